/**
 * The cluster's view for the stats endpoint: the primary's snapshot (server states, checks, failovers, affinity
 * table, events) with the connection counters of the workers added up. Maxima are sums of the workers' maxima (an
 * upper bound of the true maximum, as HAProxy's per-process counters were before threads).
 */
import type { FrontendCounters, FrontendSnapshot } from '../frontend.ts';
import { mergeCheckouts, type PoolCheckouts } from '../license-session/checkout-counters.ts';
import type { PoolSnapshot } from '../pool.ts';
import type { RuntimeSnapshot } from '../runtime.ts';
import type { ServerCounters, ServerSnapshot } from '../server.ts';

/** Server counters that count connections, kept by the workers; the rest (checks, transitions) are the primary's. */
const SERVER_CONN_COUNTERS = ['cur', 'max', 'total', 'bytesIn', 'bytesOut', 'connectErrors', 'retries', 'redispatches'] as const satisfies readonly (keyof ServerCounters)[];
const FRONTEND_COUNTERS = ['total', 'current', 'max', 'denied', 'overLimit', 'bytesIn', 'bytesOut'] as const satisfies readonly (keyof FrontendCounters)[];
const POOL_CONN_COUNTERS = ['queueCur', 'queueMax', 'queueTimeouts', 'noServer'] as const;

export function mergeSnapshots(primary: RuntimeSnapshot, workers: readonly RuntimeSnapshot[]): RuntimeSnapshot {
  const frontendsOf = index(workers.map((w) => w.frontends));
  const poolsOf = index(workers.map((w) => w.pools));
  return {
    time: primary.time,
    connections: { current: sum(workers.map((w) => w.connections.current)), max: primary.connections.max },
    frontends: primary.frontends.map((f) => mergeFrontend(f, frontendsOf.get(f.name) ?? [])),
    pools: primary.pools.map((p) => mergePool(p, poolsOf.get(p.name) ?? [])),
  };
}

function mergeFrontend(f: FrontendSnapshot, ws: readonly FrontendSnapshot[]): FrontendSnapshot {
  const counters = { ...f.counters };
  for (const k of FRONTEND_COUNTERS) counters[k] = sum(ws.map((w) => w.counters[k]));
  return {
    ...f,
    address: ws.find((w) => w.address !== null)?.address ?? f.address,
    accepting: ws.some((w) => w.accepting),
    counters,
  };
}

function mergePool(p: PoolSnapshot & PoolCheckouts, ws: ReadonlyArray<PoolSnapshot & PoolCheckouts>): PoolSnapshot & PoolCheckouts {
  const counters = { ...p.counters };
  for (const k of POOL_CONN_COUNTERS) counters[k] = sum(ws.map((w) => w.counters[k]));
  const affinity = { ...p.affinity };
  if (affinity.by === 'handle') {
    affinity.hits = sum(ws.map((w) => w.affinity.hits));
    affinity.misses = sum(ws.map((w) => w.affinity.misses));
  }
  const serversOf = index(ws.map((w) => w.servers));
  const merged = { ...p, counters, affinity, servers: p.servers.map((s) => mergeServer(s, serversOf.get(s.name) ?? [])) };
  // Checkouts are counted where the connections are: the primary's own (none with workers) plus every worker's.
  const checkouts = mergeCheckouts([p.checkouts, ...ws.map((w) => w.checkouts)]);
  return checkouts === undefined ? merged : { ...merged, checkouts };
}

function mergeServer(s: ServerSnapshot, ws: readonly ServerSnapshot[]): ServerSnapshot {
  const counters = { ...s.counters };
  for (const k of SERVER_CONN_COUNTERS) counters[k] = sum(ws.map((w) => w.counters[k]));
  return { ...s, counters };
}

function index<T extends { name: string }>(lists: readonly (readonly T[])[]): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const list of lists) {
    for (const x of list) {
      const l = m.get(x.name);
      if (l) l.push(x);
      else m.set(x.name, [x]);
    }
  }
  return m;
}

function sum(xs: readonly number[]): number {
  let n = 0;
  for (const x of xs) n += x;
  return n;
}
