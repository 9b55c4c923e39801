/**
 * Helpers for tests of the stats listener: raw HTTP requests (node:http, so paths go out exactly as written, `..`
 * included), a scripted StatsSource that records admin calls, and snapshots of any size. The end-to-end tests
 * through the real proxy reuse `request` / `getJson` against the runtime's stats address.
 */
import http from 'node:http';
import type {
  AdminAction, AdminResult, AdminState, FeatureStats, PoolStats, ReloadResult, ServerStats, ServerStatus,
  StatsEvent, StatsSnapshot, StatsSource,
} from '../../src/stats/snapshot.ts';
import { sumServers } from '../../src/stats/snapshot.ts';
import { StatsServer, type StatsServerOptions } from '../../src/stats/stats-server.ts';

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Client-side deadline; default 10 s. */
  timeoutMs?: number;
}

/** One request on a fresh connection (no agent, no keep-alive pooling between tests). */
export function request(base: string | { host: string; port: number }, path: string, opts: RequestOptions = {}): Promise<HttpResult> {
  const { host, port } = typeof base === 'string' ? hostPortOf(base) : base;
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host, port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false, timeout: opts.timeoutMs ?? 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`request ${path} timed out`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

export async function getJson<T = unknown>(base: string | { host: string; port: number }, path: string): Promise<{ status: number; json: T }> {
  const r = await request(base, path);
  return { status: r.status, json: JSON.parse(r.body) as T };
}

/** POST to an admin endpoint with an optional bearer token and JSON body. */
export function adminPost(base: string | { host: string; port: number }, path: string, body: unknown, token?: string): Promise<HttpResult> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (token !== undefined) headers.Authorization = `Bearer ${token}`;
  return request(base, path, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

function hostPortOf(base: string): { host: string; port: number } {
  const u = new URL(base);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) };
}

// --- scripted data ---------------------------------------------------------------------------------------------

/** T0: the fixed "now" of the scripted snapshot, so ages on the page are predictable. */
export const T0 = Date.UTC(2025, 0, 31, 14, 0, 0);

export const HOSTILE_NAME = '<script>alert(1)</script>';

export function server(name: string, over: Partial<ServerStats> = {}): ServerStats {
  return {
    name,
    host: '10.0.0.1',
    ports: { license: 31010, tokens: 31011 },
    tier: 0,
    weight: { effective: 100, configured: 100 },
    adminState: 'ready',
    status: 'UP',
    scur: 0, smax: 0, slim: null, stot: 0, bytesIn: 0, bytesOut: 0,
    connectErrors: 0, retries: 0, redispatches: 0, checkFailures: 0, downTransitions: 0, upTransitions: 1,
    lastCheck: { ok: true, reason: 'ok', durationMs: 3, at: T0 - 2_000 },
    lastChangeAt: null, downtimeMs: 0, bindings: 0, features: [],
    ...over,
  };
}

export function pool(name: string, servers: ServerStats[], over: Partial<PoolStats> = {}): PoolStats {
  return {
    name, mode: 'balance', balance: 'roundrobin', available: true, usable: servers.length, activeTier: 0,
    failovers: 0, lastFailoverAt: null,
    affinity: { by: 'none', bindings: 0, hits: 0, misses: 0, evictions: 0 },
    totals: sumServers(servers), queue: { cur: 0, max: 0 }, servers,
    ...over,
  };
}

/**
 * A snapshot with one of everything: a failover pool with tiers, a MASTER, lmstat features, transitional states;
 * a master-mode pool with no usable server (so /ready is 503); a hostile server name.
 */
export function scriptedSnapshot(): StatsSnapshot {
  const features: FeatureStats[] = [
    { name: 'LS-DYNA', issued: 50, inUse: 3, expiry: '31-dec-2027' },
    { name: 'MPPDYNA', issued: 1024, inUse: 1000 },
  ];
  const lsdyna = [
    server('primary', {
      host: '10.0.0.1', scur: 4, smax: 17, slim: 500, stot: 123457, bytesIn: 9876543, bytesOut: 1234567,
      connectErrors: 11, retries: 13, redispatches: 5, checkFailures: 21, downTransitions: 2, upTransitions: 3,
      lastCheck: { ok: true, reason: 'ok', durationMs: 12, at: T0 - 3_000 }, lastChangeAt: T0 - 3_725_000,
      downtimeMs: 65_000, bindings: 42, master: true, features,
    }),
    server('secondary', {
      host: '10.0.0.2', tier: 1, weight: { effective: 40, configured: 80 }, status: 'UP 1/3', stot: 777,
      checkFailures: 1, lastCheck: { ok: false, reason: 'timeout after 500ms', durationMs: 501, at: T0 - 1_000 },
      features: [{ name: 'LS-DYNA', issued: 50, inUse: 50 }],
    }),
    server('tertiary', {
      host: '10.0.0.3', tier: 2, ports: { license: 31010, tokens: 31099 }, weight: { effective: 0, configured: 60 },
      status: 'DOWN 1/2', downTransitions: 1, upTransitions: 0, downtimeMs: 3_600_000, lastChangeAt: T0 - 600_000,
      lastCheck: { ok: true, reason: 'ok', durationMs: 8, at: T0 - 500 },
      features: [{ name: 'LS-DYNA', issued: 50, inUse: 0, expiry: '01-jan-2020', expired: true }],
    }),
    server('drained', { host: '10.0.0.4', status: 'DRAIN', adminState: 'drain', weight: { effective: 0, configured: 100 }, scur: 2, stot: 9 }),
  ];
  const flex = [
    server('flex1', { host: 'fx1.example', ports: { lmgrd: 27000, vendor: 27001 }, status: 'DOWN', downTransitions: 4,
      lastCheck: { ok: false, reason: 'connect ECONNREFUSED', durationMs: 1, at: T0 - 200 } }),
    server('flex2', { host: 'fx2.example', ports: { lmgrd: 27000, vendor: 27001 }, status: 'MAINT', adminState: 'maint' }),
    server('flex3', { host: 'fx3.example', ports: { lmgrd: 27000, vendor: 27001 }, status: 'no check', lastCheck: null, upTransitions: 0 }),
    server('flex4', { host: 'fx4.example', ports: { lmgrd: 27000, vendor: 27001 }, status: 'NOLB' }),
  ];
  const evil = [server(HOSTILE_NAME, { host: '"><img src=x onerror=alert(2)>', status: 'UP', stot: 1,
    features: [{ name: '<b>feat</b>', issued: 2, inUse: 1 }],
    lastCheck: { ok: false, reason: '<script>bad()</script>', durationMs: 2, at: T0 } })];
  return {
    at: T0,
    process: { pid: 4242, uptimeMs: 90_061_000, version: '0.1.0', startedAt: T0 - 90_061_000 },
    frontends: [
      { name: 'lstc', listen: '0.0.0.0:31010', pool: 'lsdyna', port: 'license', status: 'OPEN',
        scur: 6, smax: 19, slim: 5000, stot: 124243, denied: 7, bytesIn: 9876545, bytesOut: 1234569 },
      { name: 'lstc_tokens', listen: '0.0.0.0:31011', pool: 'lsdyna', port: 'tokens', status: 'STOPPED',
        scur: 0, smax: 2, slim: null, stot: 31, denied: 0, bytesIn: 10, bytesOut: 20 },
    ],
    pools: [
      pool('lsdyna', lsdyna, {
        mode: 'failover', balance: 'first', usable: 2, activeTier: 0, failovers: 3, lastFailoverAt: T0 - 240_000,
        affinity: { by: 'source', bindings: 42, hits: 1001, misses: 57, evictions: 9 },
        redundancy: 'paired and synced', queue: { cur: 1, max: 6 }, lastChangeAt: T0 - 7_200_000, downtimeMs: 30_000,
      }),
      pool('flex', flex, { mode: 'master', available: false, usable: 0, activeTier: null, redundancy: 'peer not available' }),
      pool('evil"pool', evil, { balance: 'leastconn' }),
    ],
  };
}

export function scriptedEvents(): StatsEvent[] {
  return [
    { at: T0 - 60_000, type: 'down', pool: 'flex', server: 'flex1', from: 'UP', to: 'DOWN', reason: 'connect ECONNREFUSED' },
    { at: T0 - 50_000, type: 'failover', pool: 'lsdyna', from: '0', to: '1', reason: 'tier 0 has no usable server' },
    { at: T0 - 40_000, type: 'failback', pool: 'lsdyna', from: '1', to: '0', reason: 'primary UP for 5m' },
    { at: T0 - 30_000, type: 'reload', reason: 'configuration reloaded (SIGHUP)' },
    { at: T0 - 20_000, type: 'admin', pool: 'lsdyna', server: 'drained', from: 'ready', to: 'drain', reason: 'admin from 127.0.0.1:5555' },
    { at: T0 - 10_000, type: 'up', pool: 'evil"pool', server: HOSTILE_NAME, from: 'DOWN', to: 'UP', reason: '<i>hostile</i> reason' },
  ];
}

/** `pools` x `perPool` servers, each with two features and some counters; for scale tests and benchmarks. */
export function largeSnapshot(pools: number, perPool: number, at = Date.now()): StatsSnapshot {
  const list: PoolStats[] = [];
  for (let p = 0; p < pools; p++) {
    const servers: ServerStats[] = [];
    for (let i = 0; i < perPool; i++) {
      const n = p * perPool + i;
      servers.push(server(`srv${i}`, {
        host: `10.${p >> 8}.${p & 255}.${i + 1}`, tier: i % 3, status: i % 7 === 3 ? 'DOWN' : 'UP',
        scur: n % 13, smax: 20, stot: n * 17, bytesIn: n * 1000, bytesOut: n * 3000, connectErrors: n % 5,
        checkFailures: n % 11, bindings: n % 9, lastCheck: { ok: true, reason: 'ok', durationMs: (n % 40) + 1, at },
        features: [{ name: 'LS-DYNA', issued: 50, inUse: n % 50 }, { name: 'MPPDYNA', issued: 1024, inUse: n % 1024 }],
      }));
    }
    list.push(pool(`pool${p}`, servers, { affinity: { by: 'source', bindings: p * 3, hits: p * 100, misses: p, evictions: 0 } }));
  }
  return {
    at,
    process: { pid: process.pid, uptimeMs: 1000, version: '0.1.0', startedAt: at - 1000 },
    frontends: list.map((p, i) => ({ name: `fe${i}`, listen: `0.0.0.0:${20000 + i}`, pool: p.name, port: 'license', status: 'OPEN' as const,
      scur: 1, smax: 2, slim: null, stot: 100 + i, denied: i, bytesIn: 5, bytesOut: 6 })),
    pools: list,
  };
}

// --- a fake source ---------------------------------------------------------------------------------------------

export interface AdminCall {
  op: 'state' | 'weight' | 'bindings';
  pool: string;
  server: string;
  value: AdminState | number | 'clear';
}

/** A StatsSource over a replaceable snapshot; admin hooks change the snapshot and are recorded for assertions. */
export class FakeStatsSource implements StatsSource {
  snap: StatsSnapshot;
  eventList: StatsEvent[];
  readonly calls: AdminCall[] = [];
  readonly actions: AdminAction[] = [];
  reloadResult: ReloadResult = { ok: true };
  reloads = 0;
  snapshots = 0;

  constructor(snap: StatsSnapshot = scriptedSnapshot(), events: StatsEvent[] = scriptedEvents()) {
    this.snap = snap;
    this.eventList = events;
  }

  snapshot(): StatsSnapshot {
    this.snapshots++;
    return this.snap;
  }

  events(): readonly StatsEvent[] {
    return this.eventList;
  }

  setServerState(pool: string, server: string, state: AdminState): AdminResult {
    const found = this.#find(pool, server);
    if (!found.ok) return found.result;
    this.calls.push({ op: 'state', pool, server, value: state });
    found.server.adminState = state;
    return { ok: true };
  }

  setServerWeight(pool: string, server: string, weight: number): AdminResult {
    const found = this.#find(pool, server);
    if (!found.ok) return found.result;
    this.calls.push({ op: 'weight', pool, server, value: weight });
    found.server.weight = { ...found.server.weight, configured: weight };
    return { ok: true };
  }

  clearServerBindings(pool: string, server: string): AdminResult {
    const found = this.#find(pool, server);
    if (!found.ok) return found.result;
    this.calls.push({ op: 'bindings', pool, server, value: 'clear' });
    found.server.bindings = 0;
    return { ok: true };
  }

  async reload(): Promise<ReloadResult> {
    this.reloads++;
    return this.reloadResult;
  }

  recordAdminAction(action: AdminAction): void {
    this.actions.push(action);
  }

  #find(poolName: string, serverName: string): { ok: true; server: ServerStats } | { ok: false; result: AdminResult } {
    const p = this.snap.pools.find((x) => x.name === poolName);
    if (!p) return { ok: false, result: { ok: false, error: 'no_pool', message: `no pool ${poolName}` } };
    const s = p.servers.find((x) => x.name === serverName);
    if (!s) return { ok: false, result: { ok: false, error: 'no_server', message: `no server ${serverName} in pool ${poolName}` } };
    return { ok: true, server: s };
  }
}

export type { ServerStatus };

// --- a running stats server ------------------------------------------------------------------------------------

export interface StartedStats {
  server: StatsServer;
  source: FakeStatsSource;
  base: { host: string; port: number };
  url: string;
}

/** Starts a StatsServer on 127.0.0.1:0 over a FakeStatsSource (or the given source); stopped at teardown. */
export async function startStats(
  t: { teardown(fn: () => unknown): void },
  opts: Partial<Omit<StatsServerOptions, 'source'>> & { source?: FakeStatsSource } = {},
): Promise<StartedStats> {
  const source = opts.source ?? new FakeStatsSource();
  const server = new StatsServer({ host: '127.0.0.1', port: 0, refreshMs: 5_000, defaultMetrics: false, stopGraceMs: 200, ...opts, source });
  const base = await server.start();
  t.teardown(() => server.stop());
  return { server, source, base, url: server.url };
}
