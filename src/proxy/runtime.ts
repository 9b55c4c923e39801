/**
 * The running balancer: frontends and pools built from a ProxyConfig. A reload reconciles (SPEC 2.6): frontends
 * are matched by name, pools by name, servers by (pool, name); what matches keeps its state, counters and
 * connections, what is new is added, what is gone stops taking new clients and is left to end by itself. No
 * existing connection is closed by a reload. Starting is a reload from nothing.
 */
import { withCheckouts, type PoolCheckouts } from './license-session/checkout-counters.ts';
import type { Server as NetServer } from 'node:net';
import type { HostPort } from '../common/address.ts';
import { LpxError } from '../common/errors.ts';
import { silentLogger, type Logger } from '../common/logger.ts';
import type { FrontendConfig, PoolConfig, ProxyConfig } from '../config/proxy-config.ts';
import type { Connection } from './connection.ts';
import { EventLog, type ProxyEvent } from './event-log.ts';
import { Frontend, type FrontendSnapshot, type GlobalLimits } from './frontend.ts';
import { checkNativeRelay } from './native-relay-self-test.ts';
import { checkNodeInternals } from './node-internals-self-test.ts';
import { Pool, type AffinityFactory, type MonitorFactory, type PoolDeps, type PoolSnapshot } from './pool.ts';
import type { Server } from './server.ts';
import { TimeoutSweeper } from './timeout-sweeper.ts';

export interface RuntimeOptions {
  log?: Logger;
  /** Builds the health monitor of a server; absent (or `check.type: none`): servers are UP at once, unchecked. */
  monitorFactory?: MonitorFactory;
  events?: EventLog;
  /** False: frontends are built but open no listener (the cluster primary, whose workers listen). Default true. */
  listen?: boolean;
  /** Logger of pools and servers (state changes, failovers); default `log`. Workers pass a silent one. */
  controlLog?: Logger;
  affinityFactory?: AffinityFactory;
  onServerChange?: (pool: Pool, server: Server) => void;
}

export interface RuntimeSnapshot {
  time: number;
  connections: { current: number; max: number };
  frontends: FrontendSnapshot[];
  /** licd pools also carry their checkout counters (license-session/checkout-counters.ts). */
  pools: Array<PoolSnapshot & PoolCheckouts>;
}

/** A reload made ready to apply: `commit` swaps it in (synchronous, cannot fail), `abort` closes what it opened. */
export interface PreparedApply {
  commit(): ApplySummary;
  abort(): void;
}

/** A frontend of the next configuration that needs a listener: opened at prepare, or handed over at commit. */
interface Staged {
  fe: Frontend;
  listener: NetServer | null;
  /** The frontend whose listener on the same address is handed over (it gives that address up). */
  from: Frontend | null;
  isNew: boolean;
}

/** What a reload changed, by name (for the log, the event and the reload endpoint's answer). */
export interface ApplySummary {
  added: string[];
  removed: string[];
  changed: string[];
}

export class ProxyRuntime {
  readonly log: Logger;
  readonly events: EventLog;
  readonly limits: GlobalLimits;
  readonly live = new Set<Connection>();
  readonly #sweeper = new TimeoutSweeper(this.live, () => this.#housekeep());
  #config: ProxyConfig;
  #pools = new Map<string, Pool>();
  #frontends = new Map<string, Frontend>();
  readonly #poolDeps: PoolDeps;
  readonly #listen: boolean;
  #started = false;
  #stopping = false;
  /** A prepared reload awaits its commit or abort. */
  #preparing = false;

  constructor(config: ProxyConfig, opts: RuntimeOptions = {}) {
    this.#config = config;
    this.log = opts.log ?? silentLogger;
    this.events = opts.events ?? new EventLog();
    this.#listen = opts.listen ?? true;
    this.#poolDeps = {
      log: opts.controlLog ?? this.log,
      events: this.events,
      monitorFactory: opts.monitorFactory,
      affinityFactory: opts.affinityFactory,
      onServerChange: opts.onServerChange,
    };
    this.limits = { current: 0, max: config.global.maxConnections };
  }

  get config(): ProxyConfig {
    return this.#config;
  }

  /** Opens every listener and starts the health monitors; throws LpxError (LPX_ERR_LISTEN) and opens nothing on failure. */
  async start(): Promise<void> {
    if (this.#started) return;
    if (this.#listen) {
      await checkNodeInternals(this.log);
      await checkNativeRelay(this.log);
    }
    (await this.#prepare(this.#config, true)).commit();
    this.#started = true;
  }

  /**
   * Reconciles the running state with `next`: `prepare` then `commit`. If a listener cannot open, nothing is
   * changed and the LpxError is thrown (the running configuration stays).
   */
  async apply(next: ProxyConfig): Promise<ApplySummary> {
    return (await this.prepare(next)).commit();
  }

  /**
   * The fallible half of a reload: builds the new pools (not started) and opens the listeners that are new or moved,
   * changing nothing that runs. The caller then commits (synchronous, cannot fail) or aborts (closes what was
   * opened). Until then no other reload may be prepared.
   */
  async prepare(next: ProxyConfig): Promise<PreparedApply> {
    if (!this.#started) throw new LpxError('LPX_ERR_USAGE', 'the balancer is not started');
    if (this.#stopping) throw new LpxError('LPX_ERR_USAGE', 'the balancer is stopping');
    const prepared = await this.#prepare(next, false);
    return {
      commit: () => {
        const summary = prepared.commit();
        const what = [
          ...summary.added.map((n) => `+${n}`),
          ...summary.removed.map((n) => `-${n}`),
          ...summary.changed.map((n) => `~${n}`),
        ].join(' ');
        this.log.info({ ...summary, file: next.file }, 'configuration reloaded');
        this.events.add({ kind: 'reload', reason: what ? `reloaded: ${what}` : 'reloaded: no change' });
        return summary;
      },
      abort: prepared.abort,
    };
  }

  async #prepare(next: ProxyConfig, first: boolean): Promise<PreparedApply> {
    if (this.#preparing) throw new LpxError('LPX_ERR_USAGE', 'another reload is being applied');
    for (const fc of next.frontends) {
      if (!next.pools.some((p) => p.name === fc.pool)) {
        throw new LpxError('LPX_ERR_CONFIG', `frontend ${fc.name}: no pool named "${fc.pool}"`);
      }
    }
    const deps = this.#poolDeps;
    const fdeps = { log: this.log, limits: this.limits, live: this.live, sweeper: this.#sweeper };

    // Fallible: build new pools (not started) and open the listeners that are new or moved. A listener this very
    // process holds on the wanted address, for a frontend that gives it up in `next` (renamed, moved, removed), is
    // handed over at commit instead: opening another would fail with "address in use".
    const newPools = new Map<string, Pool>();
    for (const pc of next.pools) if (!this.#pools.has(pc.name)) newPools.set(pc.name, new Pool(pc, deps));
    const poolNamed = (name: string): Pool => (this.#pools.get(name) ?? newPools.get(name))!;
    const nextByName = new Map(next.frontends.map((f) => [f.name, f]));
    const givenUp = (holder: Frontend): boolean => {
      const keeps = nextByName.get(holder.name);
      return keeps === undefined || !holdsAddress(holder, keeps.listen);
    };
    const staged: Staged[] = [];
    const claimed = new Set<Frontend>();
    try {
      for (const fc of next.frontends) {
        const fe = this.#frontends.get(fc.name);
        if (!this.#listen) {
          if (!fe) staged.push({ fe: new Frontend(fc, poolNamed(fc.pool), fdeps), listener: null, from: null, isNew: true });
          continue;
        }
        if (fe && fe.accepting && sameListen(fe.config, fc)) continue;
        const target = fe ?? new Frontend(fc, poolNamed(fc.pool), fdeps);
        const holder = [...this.#frontends.values()].find((h) => h !== fe && h.accepting && !claimed.has(h) && holdsAddress(h, fc.listen) && givenUp(h));
        if (holder) {
          claimed.add(holder);
          staged.push({ fe: target, listener: null, from: holder, isNew: !fe });
          continue;
        }
        staged.push({ fe: target, listener: await target.open(fc.listen), from: null, isNew: !fe });
      }
    } catch (err) {
      for (const st of staged) st.listener?.close();
      for (const p of newPools.values()) p.stop();
      throw err;
    }
    this.#preparing = true;
    let done = false;
    return {
      commit: () => {
        if (done) throw new LpxError('LPX_ERR_USAGE', 'this reload was already committed or aborted');
        done = true;
        this.#preparing = false;
        return this.#commit(next, first, newPools, staged);
      },
      abort: () => {
        if (done) return;
        done = true;
        this.#preparing = false;
        for (const st of staged) st.listener?.close();
        for (const p of newPools.values()) p.stop();
      },
    };
  }

  /** The infallible half: swaps pools and frontends in, synchronously. */
  #commit(next: ProxyConfig, first: boolean, newPools: Map<string, Pool>, staged: Staged[]): ApplySummary {
    const prev = this.#config;
    const summary: ApplySummary = { added: [], removed: [], changed: [] };
    const oldPools = new Map(prev.pools.map((p) => [p.name, p]));
    const pools = new Map<string, Pool>();
    for (const pc of next.pools) {
      const created = newPools.get(pc.name);
      if (created) {
        pools.set(pc.name, created);
        if (!first) summary.added.push(`pool ${pc.name}`);
        continue;
      }
      const pool = this.#pools.get(pc.name)!;
      if (!samePool(oldPools.get(pc.name), pc)) {
        pool.update(pc);
        summary.changed.push(`pool ${pc.name}`);
      }
      pools.set(pc.name, pool);
    }
    for (const [name, pool] of this.#pools) {
      if (pools.has(name)) continue;
      pool.retire();
      summary.removed.push(`pool ${name}`);
    }
    this.#pools = pools;

    // Handed-over listeners leave their holders first, so a holder that moves elsewhere does not close them.
    for (const st of staged) if (st.from) st.listener = st.from.release();
    const oldFrontends = new Map(prev.frontends.map((f) => [f.name, f]));
    const frontends = new Map<string, Frontend>();
    for (const fc of next.frontends) {
      const st = staged.find((s) => s.fe.name === fc.name);
      const fe = st?.fe ?? this.#frontends.get(fc.name)!;
      if (st && st.isNew) {
        if (!first) summary.added.push(`frontend ${fc.name}`);
      } else {
        const before = oldFrontends.get(fc.name);
        if (!before || JSON.stringify(before) !== JSON.stringify(fc)) summary.changed.push(`frontend ${fc.name}`);
        fe.update(fc, pools.get(fc.pool)!);
      }
      if (st?.listener) {
        if (st.from) fe.adopt(st.listener);
        else fe.install(st.listener);
      }
      frontends.set(fc.name, fe);
    }
    for (const [name, fe] of this.#frontends) {
      if (frontends.has(name)) continue;
      fe.stopAccepting();
      summary.removed.push(`frontend ${name}`);
      this.log.info({ frontend: name, connections: fe.counters.current }, 'frontend removed: stopped accepting');
    }
    this.#frontends = frontends;

    this.limits.max = next.global.maxConnections;
    this.#config = next;
    this.#sweeper.configure(
      Math.min(...next.pools.map((p) => p.timeouts.connect), 3_000),
      Math.min(...next.pools.map((p) => Math.min(p.timeouts.idle || Infinity, p.timeouts.clientFin))),
    );
    for (const p of pools.values()) p.start();
    return summary;
  }

  /**
   * Stops accepting, closes clients still waiting in a queue, waits up to `graceMs` for live connections to end,
   * then closes the rest (`shutdown`).
   */
  async stop(graceMs = this.#config.global.grace): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const fe of this.#frontends.values()) fe.stopAccepting();
    for (const p of this.#pools.values()) p.stop();
    for (const c of [...this.live]) if (c.state === 'queued' || c.state === 'placing' || c.state === 'reading' || c.state === 'asking') c.close('shutdown');
    if (this.live.size > 0) {
      this.log.info({ connections: this.live.size, graceMs }, 'stopping: waiting for connections to end');
      await this.#waitIdle(graceMs);
    }
    if (this.live.size > 0) {
      this.log.warn({ connections: this.live.size }, 'grace period over: closing the remaining connections');
      for (const c of [...this.live]) c.close('shutdown');
      await this.#waitIdle(2_000);
    }
    this.#sweeper.stop();
    this.log.info('stopped');
  }

  /** About once a second: expired affinity bindings are dropped, a bounded number per pool per call. */
  #housekeep(): void {
    for (const p of this.#pools.values()) p.sweepAffinity(AFFINITY_SWEEP_BUDGET);
  }

  async #waitIdle(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.live.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, deadline - Date.now()))));
    }
  }

  // ---- lookups for the admin API and tests ----

  pool(name: string): Pool | undefined {
    return this.#pools.get(name);
  }

  server(pool: string, name: string): Server | undefined {
    return this.#pools.get(pool)?.server(name);
  }

  frontend(name: string): Frontend | undefined {
    return this.#frontends.get(name);
  }

  /** The bound port of a frontend (tests listen on port 0). */
  port(frontend: string): number {
    const a = this.#frontends.get(frontend)?.address();
    if (!a) throw new LpxError('LPX_ERR_USAGE', `frontend ${frontend} is not listening`);
    return a.port;
  }

  /** /ready: every pool has a usable server. */
  readiness(): { ready: boolean; unavailable: string[] } {
    const unavailable = [...this.#pools.values()].filter((p) => !p.isAvailable()).map((p) => p.name);
    return { ready: unavailable.length === 0, unavailable };
  }

  eventList(): ProxyEvent[] {
    return this.events.list();
  }

  snapshot(): RuntimeSnapshot {
    const now = Date.now();
    return {
      time: now,
      connections: { current: this.limits.current, max: this.limits.max },
      frontends: [...this.#frontends.values()].map((f) => f.snapshot()),
      pools: [...this.#pools.values()].map((p) => withCheckouts(p.snapshot(now), p)),
    };
  }
}

/** Table entries visited per pool per second: a few ms at most, and a million bindings covered in under a minute. */
const AFFINITY_SWEEP_BUDGET = 20_000;

function sameListen(a: FrontendConfig, b: FrontendConfig): boolean {
  return a.listen.host === b.listen.host && a.listen.port === b.listen.port;
}

/** Whether `fe` listens on `listen`: as configured, or on the port it was given for a configured port 0. */
function holdsAddress(fe: Frontend, listen: HostPort): boolean {
  const mine = fe.config.listen;
  return mine.host === listen.host && (mine.port === listen.port || fe.address()?.port === listen.port);
}

function samePool(a: PoolConfig | undefined, b: PoolConfig): boolean {
  return a !== undefined && JSON.stringify(a) === JSON.stringify(b);
}
