/**
 * The adapter between the running balancer and the stats endpoint: builds the stats snapshot from the runtime's
 * plain snapshot (the rest of src/stats never sees live proxy objects) and forwards the admin calls.
 */
import { errorMessage } from '../common/errors.ts';
import type { ProxyApp } from '../proxy/app.ts';
import type { ProxyEvent } from '../proxy/event-log.ts';
import type { FrontendSnapshot } from '../proxy/frontend.ts';
import type { PoolCheckouts } from '../proxy/license-session/checkout-counters.ts';
import type { PoolSnapshot } from '../proxy/pool.ts';
import type { RuntimeSnapshot } from '../proxy/runtime.ts';
import type { Server, ServerSnapshot } from '../proxy/server.ts';
import { VERSION } from '../cli/version.ts';
import type {
  AdminAction,
  AlertDeliveryStats,
  AdminResult,
  AdminState,
  FrontendStats,
  PoolStats,
  ProcessStats,
  ReloadResult,
  ServerStats,
  ServerStatus,
  StatsEvent,
  StatsSnapshot,
  StatsSource,
} from './snapshot.ts';
import { sumServers } from './snapshot.ts';

const TRANSITIONAL = /^(UP|DOWN) \d+\/\d+$/;

/** Where the runtime snapshot comes from when it is not the app's own runtime alone (a cluster primary). */
export interface SnapshotProvider {
  refresh(): Promise<void>;
  snapshot(): RuntimeSnapshot;
  readonly workers: NonNullable<ProcessStats['workers']>;
}

/** Adapts the running balancer to what the stats server reads and calls. */
export class RuntimeStatsSource implements StatsSource {
  readonly #app: ProxyApp;
  readonly #provider: SnapshotProvider | null;
  readonly #alerts: { stats(): AlertDeliveryStats[] } | null;
  readonly refresh?: () => Promise<void>;

  constructor(app: ProxyApp, provider: SnapshotProvider | null = null, alerts: { stats(): AlertDeliveryStats[] } | null = null) {
    this.#app = app;
    this.#provider = provider;
    this.#alerts = alerts;
    if (provider !== null) this.refresh = () => provider.refresh();
  }

  snapshot(): StatsSnapshot {
    const p = this.#provider;
    const rt = p !== null ? p.snapshot() : this.#app.runtime.snapshot();
    return {
      at: rt.time,
      process: {
        pid: process.pid,
        uptimeMs: rt.time - this.#app.startedAt,
        version: VERSION,
        startedAt: this.#app.startedAt,
        ...(p !== null ? { workers: p.workers } : {}),
        reloads: { ...this.#app.reloads, last: this.#app.reloads.last && { ...this.#app.reloads.last } },
        ...(this.#alerts !== null ? { alerts: this.#alerts.stats() } : {}),
      },
      frontends: rt.frontends.map(frontendStats),
      pools: rt.pools.map(poolStats),
    };
  }

  events(): readonly StatsEvent[] {
    return this.#app.runtime.eventList().map(statsEvent);
  }

  setServerState(pool: string, server: string, state: AdminState): AdminResult {
    const found = this.#find(pool, server);
    if (!('server' in found)) return found;
    found.server.setAdminState(state, 'admin API');
    return { ok: true };
  }

  setServerWeight(pool: string, server: string, weight: number): AdminResult {
    const found = this.#find(pool, server);
    if (!('server' in found)) return found;
    try {
      found.server.setWeight(weight, 'admin API');
    } catch (err) {
      return { ok: false, error: 'invalid', message: errorMessage(err) };
    }
    return { ok: true };
  }

  clearServerBindings(pool: string, server: string): AdminResult {
    const found = this.#find(pool, server);
    if (!('server' in found)) return found;
    found.server.clearBindings('admin API');
    return { ok: true };
  }

  #find(pool: string, server: string): AdminResult | { server: Server } {
    const rt = this.#app.runtime;
    if (!rt.pool(pool)) return { ok: false, error: 'no_pool', message: `no pool "${pool}"` };
    const s = rt.server(pool, server);
    if (!s) return { ok: false, error: 'no_server', message: `no server "${server}" in pool "${pool}"` };
    return { server: s };
  }

  async reload(): Promise<ReloadResult> {
    const r = await this.#app.reload();
    return r.ok ? { ok: true } : { ok: false, error: r.errors.join('\n') };
  }

  recordAdminAction(action: AdminAction): void {
    // Applied changes are already events of the server (state / weight) or of the runtime (reload); a refused
    // one is recorded here so the event list shows every attempt.
    if (action.ok) return;
    this.#app.runtime.events.add({
      kind: 'admin',
      ...(action.pool !== undefined ? { pool: action.pool } : {}),
      ...(action.server !== undefined ? { server: action.server } : {}),
      reason: `${action.action} from ${action.remote} refused: ${action.error ?? 'error'}`,
    });
  }
}

function frontendStats(f: FrontendSnapshot): FrontendStats {
  const c = f.counters;
  return {
    name: f.name,
    listen: f.address ?? f.listen,
    pool: f.pool,
    port: f.port,
    status: f.accepting ? 'OPEN' : 'STOPPED',
    scur: c.current,
    smax: c.max,
    slim: f.maxConnections > 0 ? f.maxConnections : null,
    stot: c.total,
    denied: c.denied + c.overLimit,
    bytesIn: c.bytesIn,
    bytesOut: c.bytesOut,
  };
}

function serverStatus(s: ServerSnapshot): ServerStatus {
  if (s.status === 'UP' && s.full && !TRANSITIONAL.test(s.checkStatus)) return 'FULL';
  if (s.status === 'UP' || s.status === 'DOWN') {
    return TRANSITIONAL.test(s.checkStatus) ? (s.checkStatus as ServerStatus) : s.status;
  }
  return s.status;
}

function serverStats(s: ServerSnapshot): ServerStats {
  const c = s.counters;
  const check = s.lastCheck;
  return {
    name: s.name,
    host: s.host,
    ports: { ...s.ports },
    tier: s.tier,
    weight: { effective: s.effectiveWeight, configured: s.weight },
    adminState: s.adminState,
    status: serverStatus(s),
    scur: c.cur,
    smax: c.max,
    slim: s.maxConnections > 0 ? s.maxConnections : null,
    stot: c.total,
    bytesIn: c.bytesIn,
    bytesOut: c.bytesOut,
    connectErrors: c.connectErrors,
    retries: c.retries,
    redispatches: c.redispatches,
    checkFailures: c.failedChecks,
    downTransitions: c.downTransitions,
    upTransitions: c.upTransitions,
    lastCheck: check ? { ok: check.ok, reason: check.reason, durationMs: check.durationMs, at: check.at } : null,
    ...(s.checked ? { checkDurations: s.checkDurations } : {}),
    lastChangeAt: c.lastChange || null,
    downtimeMs: c.downtime,
    bindings: s.bindings,
    ...(check?.master !== undefined ? { master: check.master } : {}),
    features: (check?.features ?? []).map((f) => ({
      name: f.name,
      issued: f.issued,
      inUse: f.inUse,
      ...(f.expiry !== undefined ? { expiry: f.expiry } : {}),
      ...(f.expired !== undefined ? { expired: f.expired } : {}),
    })),
    ...(s.countsSeats ? { freeSeats: s.freeSeats } : {}),
  };
}

function poolStats(p: PoolSnapshot & PoolCheckouts): PoolStats {
  const servers = p.servers.map(serverStats);
  // The pair/triad line of the serving member says most; any member's will do when none serves.
  const redundancy =
    p.servers.find((s) => s.lastCheck?.master && s.lastCheck.redundancy)?.lastCheck?.redundancy ??
    p.servers.find((s) => s.lastCheck?.redundancy)?.lastCheck?.redundancy;
  return {
    name: p.name,
    mode: p.mode,
    balance: p.balance,
    available: p.available,
    usable: p.usable,
    activeTier: p.activeTier >= 0 ? p.activeTier : null,
    failovers: p.counters.failovers,
    lastFailoverAt: p.counters.lastFailover || null,
    affinity: p.affinity,
    ...(redundancy !== undefined ? { redundancy } : {}),
    totals: sumServers(servers),
    queue: { cur: p.counters.queueCur, max: p.counters.queueMax },
    ...(p.checkouts !== undefined ? { checkouts: p.checkouts } : {}),
    ...(p.feature !== null && p.feature !== undefined ? { feature: p.feature, featureServed: p.featureServed === true } : {}),
    ...(p.failoverHold ? { failoverHold: p.failoverHold } : {}),
    ...(p.failbackStepping ? { failbackStepping: p.failbackStepping } : {}),
    servers,
  };
}

function statsEvent(e: ProxyEvent): StatsEvent {
  const type =
    e.kind === 'server' ? (e.to === 'UP' ? 'up' : e.to === 'DOWN' ? 'down' : 'other') : e.kind;
  return {
    at: e.time,
    type,
    ...(e.pool !== undefined ? { pool: e.pool } : {}),
    ...(e.server !== undefined ? { server: e.server } : {}),
    ...(e.from !== undefined ? { from: e.from } : {}),
    ...(e.to !== undefined ? { to: e.to } : {}),
    reason: e.reason,
  };
}
