/**
 * Checkout outcomes the proxy saw on licd connections (SPEC 8.2), per pool, server and feature: the answer to each
 * connection's first CHECKOUT, the denials a retry on another server turned into grants, and the clients that
 * waited for a server (no master known, all full). Kept beside the pool (a WeakMap, no field on Pool), so a reload
 * that keeps the pool object keeps its counts.
 */
import type { CheckoutStats } from '../../stats/snapshot.ts';
import type { Pool } from '../pool.ts';

export type CheckoutResult = 'granted' | 'denied' | 'retried_saved' | 'queue_wait';

/** One row: the shape /stats.json shows (queueWaits: connections that waited in the pool queue first). */
export type CheckoutCount = CheckoutStats;

export class CheckoutCounters {
  /** server -> feature -> counts (nested maps: no key string built per checkout). */
  readonly #rows = new Map<string, Map<string, CheckoutCount>>();

  add(server: string, feature: string, result: CheckoutResult): void {
    let byFeature = this.#rows.get(server);
    if (byFeature === undefined) this.#rows.set(server, (byFeature = new Map()));
    let r = byFeature.get(feature);
    if (r === undefined) {
      r = { server, feature, granted: 0, denied: 0, retriedSaved: 0, queueWaits: 0 };
      byFeature.set(feature, r);
    }
    if (result === 'granted') r.granted++;
    else if (result === 'denied') r.denied++;
    else if (result === 'retried_saved') r.retriedSaved++;
    else r.queueWaits++;
  }

  /** Copies, sorted by server then feature (stable output for pages and scrapes). */
  rows(): CheckoutCount[] {
    const out: CheckoutCount[] = [];
    for (const m of this.#rows.values()) for (const r of m.values()) out.push({ ...r });
    return out.sort((a, b) => a.server.localeCompare(b.server) || a.feature.localeCompare(b.feature));
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

/** What a pool's snapshot carries of its checkouts (licd pools only): for /stats and the cluster's merge. */
export interface PoolCheckouts {
  checkouts?: CheckoutCount[];
}

/** Adds the pool's checkout rows to its snapshot when it is a licd pool. */
export function withCheckouts<T extends object>(snap: T, pool: Pool): T & PoolCheckouts {
  if (pool.config.protocol !== 'licd') return snap;
  return Object.assign(snap, { checkouts: checkoutCountersOf(pool).rows() });
}

/** The cluster's view: rows of the same server and feature added up over the processes that counted them. */
export function mergeCheckouts(lists: ReadonlyArray<readonly CheckoutCount[] | undefined>): CheckoutCount[] | undefined {
  if (lists.every((l) => l === undefined)) return undefined;
  const out = new Map<string, CheckoutCount>();
  for (const l of lists) {
    for (const r of l ?? []) {
      const key = `${r.server}\n${r.feature}`;
      const m = out.get(key);
      if (m === undefined) out.set(key, { ...r });
      else {
        m.granted += r.granted;
        m.denied += r.denied;
        m.retriedSaved += r.retriedSaved;
        m.queueWaits += r.queueWaits;
      }
    }
  }
  return [...out.values()].sort((a, b) => a.server.localeCompare(b.server) || a.feature.localeCompare(b.feature));
}
