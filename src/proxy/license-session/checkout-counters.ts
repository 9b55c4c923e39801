/**
 * Checkout outcomes the proxy saw on licd connections (SPEC 8.2), per pool, server and feature: the answer to each
 * connection's first CHECKOUT, the denials a retry on another server turned into grants, and the clients that
 * waited for a server (no master known, all full). Kept beside the pool (a WeakMap, no field on Pool), so a reload
 * that keeps the pool object keeps its counts.
 */
import type { Pool } from '../pool.ts';

export type CheckoutResult = 'granted' | 'denied' | 'retried_saved' | 'queue_wait';

export interface CheckoutCount {
  server: string;
  feature: string;
  granted: number;
  denied: number;
  /** Denied EXHAUSTED by one server, then granted by another: a false denial avoided. */
  retriedSaved: number;
  /** Connections that waited in the pool queue before reaching this server. */
  queueWaits: number;
}

export class CheckoutCounters {
  readonly #rows = new Map<string, CheckoutCount>();

  add(server: string, feature: string, result: CheckoutResult): void {
    const key = `${server}\n${feature}`;
    let r = this.#rows.get(key);
    if (r === undefined) {
      r = { server, feature, granted: 0, denied: 0, retriedSaved: 0, queueWaits: 0 };
      this.#rows.set(key, r);
    }
    if (result === 'granted') r.granted++;
    else if (result === 'denied') r.denied++;
    else if (result === 'retried_saved') r.retriedSaved++;
    else r.queueWaits++;
  }

  /** Copies, sorted by server then feature (stable output for pages and scrapes). */
  rows(): CheckoutCount[] {
    return [...this.#rows.values()].map((r) => ({ ...r })).sort((a, b) => a.server.localeCompare(b.server) || a.feature.localeCompare(b.feature));
  }
}

const byPool = new WeakMap<Pool, CheckoutCounters>();

export function checkoutCountersOf(pool: Pool): CheckoutCounters {
  let c = byPool.get(pool);
  if (c === undefined) {
    c = new CheckoutCounters();
    byPool.set(pool, c);
  }
  return c;
}
