/**
 * The stats endpoint as a service of the balancer process: builds the stats snapshot from the runtime's plain
 * snapshot (the stats code never sees live proxy objects), forwards admin calls, and follows reloads of the
 * `stats:` section.
 */
import { readFileSync } from 'node:fs';
import { formatHostPort } from '../../common/address.ts';
import { errorMessage, LpxError } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import type { ProxyConfig, StatsConfig } from '../../config/proxy-config.ts';
import type { AppService, ProxyApp } from '../../proxy/app.ts';
import type { ProxyEvent } from '../../proxy/event-log.ts';
import type { FrontendSnapshot } from '../../proxy/frontend.ts';
import type { RuntimeSnapshot } from '../../proxy/runtime.ts';
import type { PoolSnapshot } from '../../proxy/pool.ts';
import type { Server, ServerSnapshot } from '../../proxy/server.ts';
import type {
  AdminAction,
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
} from '../../stats/snapshot.ts';
import { sumServers } from '../../stats/snapshot.ts';
import { StatsServer } from '../../stats/stats-server.ts';
import { adminTokenProblem } from '../../stats/admin-token.ts';
import { isLoopback } from '../../config/proxy-schema.ts';
import { VERSION } from '../version.ts';

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
  readonly #startedAt = Date.now();
  readonly refresh?: () => Promise<void>;

  constructor(app: ProxyApp, provider: SnapshotProvider | null = null) {
    this.#app = app;
    this.#provider = provider;
    if (provider !== null) this.refresh = () => provider.refresh();
  }

  snapshot(): StatsSnapshot {
    const p = this.#provider;
    const rt = p !== null ? p.snapshot() : this.#app.runtime.snapshot();
    return {
      at: rt.time,
      process: {
        pid: process.pid,
        uptimeMs: rt.time - this.#startedAt,
        version: VERSION,
        startedAt: this.#startedAt,
        ...(p !== null ? { workers: p.workers } : {}),
      },
      frontends: rt.frontends.map(frontendStats),
      pools: rt.pools.map((p) => poolStats(p, this.#app.runtime.config)),
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
    qcur: c.queueCur,
    qmax: c.queueMax,
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
  };
}

interface AffinitySnapshot {
  by: 'source' | 'handle' | 'none';
  bindings: number;
  hits: number;
  misses: number;
  evictions: number;
}

function poolStats(p: PoolSnapshot & { affinity?: AffinitySnapshot }, config: ProxyConfig): PoolStats {
  const servers = p.servers.map(serverStats);
  const by = config.pools.find((c) => c.name === p.name)?.affinity.by ?? 'none';
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
    affinity: p.affinity ?? { by, bindings: 0, hits: 0, misses: 0, evictions: 0 },
    ...(redundancy !== undefined ? { redundancy } : {}),
    totals: sumServers(servers),
    queue: { cur: p.counters.queueCur, max: p.counters.queueMax },
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

function readToken(stats: StatsConfig): string | null {
  if (!stats.admin) return null;
  let content: string;
  try {
    content = readFileSync(stats.admin.tokenFile, 'utf8');
  } catch (err) {
    throw new LpxError('LPX_ERR_CONFIG_READ', `stats.admin.token_file ${stats.admin.tokenFile}: ${errorMessage(err)}`);
  }
  // Checked again here: the file may have changed since the configuration was validated.
  const problem = adminTokenProblem(content);
  if (problem) throw new LpxError('LPX_ERR_CONFIG', `stats.admin.token_file ${stats.admin.tokenFile} ${problem}`);
  return content.trim();
}

/** Runs the stats server while the configuration has a `stats:` section; restarts it when that section changes. */
export class StatsService implements AppService {
  readonly name = 'stats';
  readonly stage = 'after-proxy' as const;
  readonly #log: Logger;
  readonly #provider: SnapshotProvider | null;
  #app: ProxyApp | null = null;
  #server: StatsServer | null = null;
  #current: string | null = null;

  constructor(opts: { log: Logger; provider?: SnapshotProvider | null }) {
    this.#log = opts.log.child({ component: 'stats' });
    this.#provider = opts.provider ?? null;
  }

  /** The address the stats server listens on (port 0 resolved), or null without a `stats:` section. */
  get address(): { host: string; port: number } | null {
    return this.#server?.address ?? null;
  }

  async start(app: ProxyApp): Promise<void> {
    this.#app = app;
    await this.#follow(app.config);
  }

  async reload(config: ProxyConfig): Promise<void> {
    await this.#follow(config);
  }

  async #follow(config: ProxyConfig): Promise<void> {
    const stats = config.stats;
    const token = stats ? readToken(stats) : null;
    const key = stats ? JSON.stringify({ ...stats, token }) : null;
    if (key === this.#current) return;
    await this.#server?.stop();
    this.#server = null;
    this.#current = null;
    if (!stats) return;
    const server = new StatsServer({
      host: stats.listen.host,
      port: stats.listen.port,
      source: new RuntimeStatsSource(this.#app!, this.#provider),
      refreshMs: stats.refresh,
      adminToken: token,
      logger: this.#log,
    });
    try {
      await server.start();
    } catch (err) {
      throw new LpxError('LPX_ERR_LISTEN', `stats.listen ${formatHostPort(stats.listen)}: ${errorMessage(err)}`);
    }
    this.#server = server;
    this.#current = key;
    if (stats.admin?.insecure && !isLoopback(stats.listen.host)) {
      this.#log.warn({ listen: formatHostPort(stats.listen) }, 'stats.admin.insecure: the admin bearer token crosses the network in clear text (plain HTTP on a non-loopback address)');
    }
  }

  async stop(): Promise<void> {
    await this.#server?.stop();
    this.#server = null;
    this.#current = null;
  }
}
