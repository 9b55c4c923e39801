/**
 * A pool of servers (SPEC 2.1, 2.2): decides which server a new client goes to. It keeps the list of candidates
 * (the usable servers of the lowest usable tier, the one failover server, or the master) precomputed, recomputing
 * it only when a server tells it something changed, so `select()` is one balancer loop. Clients that find every
 * candidate full wait in the pool's FIFO queue (pool-queue.ts).
 */
import type { Logger } from '../common/logger.ts';
import type { AffinityConfig, CheckConfig, FailbackConfig, PoolConfig, ServerConfig } from '../config/proxy-config.ts';
import type { HealthMonitorLike } from '../health/types.ts';
import { createAffinity } from './affinity/create-affinity.ts';
import type { Balancer } from './balance/balancer-base.ts';
import type { AffinityHost, AffinitySnapshot, PoolAffinity, SelectContext, SelectResult } from './contracts.ts';
import { createBalancer } from './balance/create-balancer.ts';
import type { EventLog } from './event-log.ts';
import { PoolQueue, type Waiter } from './pool-queue.ts';
import { Server, type ServerOwner, type ServerSnapshot } from './server.ts';
import { needsTierRouter, TierRouter, type SteppingSnapshot, type TierRouting } from './tiers/tier-router.ts';

export type { SelectContext, SelectResult } from './contracts.ts';
export type { Waiter } from './pool-queue.ts';

export type MonitorFactory = (server: Server, pool: Pool) => HealthMonitorLike;

/** Builds a pool's affinity (the default: `createAffinity`; worker processes ask the primary instead). */
export type AffinityFactory = (config: AffinityConfig, host: AffinityHost) => PoolAffinity | null;

export interface PoolDeps {
  log: Logger;
  events: EventLog;
  monitorFactory?: MonitorFactory | undefined;
  affinityFactory?: AffinityFactory | undefined;
  /** Told of every server change the pool hears of (the cluster primary forwards them to the workers). */
  onServerChange?: ((pool: Pool, server: Server) => void) | undefined;
}

export interface PoolCounters {
  /** Times new clients moved to another tier, failover server or master. */
  failovers: number;
  /** Date.now() of the last such move (0: never). */
  lastFailover: number;
  queueCur: number;
  queueMax: number;
  queueTimeouts: number;
  /** New clients closed because the pool had no usable server. */
  noServer: number;
}

export interface PoolSnapshot {
  name: string;
  mode: PoolConfig['mode'];
  balance: PoolConfig['balance'];
  available: boolean;
  usable: number;
  /** Tier new clients go to (-1: none). */
  activeTier: number;
  /** The one server taking new clients in `failover` and `master` modes. */
  activeServer: string | null;
  counters: PoolCounters;
  affinity: AffinitySnapshot;
  /** SPEC 8: the pool's feature, and whether any server serves it (null: no feature named). */
  feature: string | null;
  featureServed: boolean | null;
  /** `failover.delay`: the tier new clients wait for while it is unusable (null: not waiting). */
  failoverHold: { tier: number; since: number; until: number } | null;
  /** A stepped failback in progress (`failback.steps`). */
  failbackStepping: SteppingSnapshot | null;
  servers: ServerSnapshot[];
}

/** Where new clients go: a tier (balance mode) or one server (failover / master). */
type Target = number | Server | null;

export class Pool implements ServerOwner, AffinityHost {
  readonly name: string;
  readonly log: Logger;
  readonly events: EventLog;
  readonly counters: PoolCounters = {
    failovers: 0,
    lastFailover: 0,
    queueCur: 0,
    queueMax: 0,
    queueTimeouts: 0,
    noServer: 0,
  };

  #config: PoolConfig;
  #monitorFactory: MonitorFactory | undefined;
  #servers: Server[] = [];
  #byName = new Map<string, Server>();
  /** Servers by (tier, declaration). */
  #ordered: Server[] = [];
  #candidates: Server[] = [];
  #balancer: Balancer;
  /** Null with `affinity.by: none`: `select` is then the balancer alone. Kept across reloads (same `by`). */
  #affinity: PoolAffinity | null;
  readonly #affinityFactory: AffinityFactory;
  readonly #onServerChange: ((pool: Pool, server: Server) => void) | undefined;
  #target: Target = null;
  /** `awaitingFirstChecks` as of the last server change (the server calling serverChanged has changed already). */
  #awaitedFirstChecks = true;
  #lastTarget: Target = null;
  /** Whether `#lastTarget` was chosen with every server's first check result in. */
  #lastTargetSettled = false;
  #activeTier = -1;
  readonly #queue: PoolQueue = new PoolQueue(this, this.counters);
  /** Licenses decide across tiers (SPEC 8.1: seats, overflow, stepped failback); null: the lowest usable tier. */
  #router: TierRouter | null = null;
  /** `failover.delay`: the tier that became unusable and new clients wait for, since when (-1: none). */
  #holdTier = -1;
  #holdSince = 0;
  #holdTimer: NodeJS.Timeout | null = null;
  #building = true;
  #started = false;
  #retired = false;

  constructor(config: PoolConfig, deps: PoolDeps) {
    this.name = config.name;
    this.#config = config;
    this.log = deps.log.child({ pool: config.name });
    this.events = deps.events;
    this.#monitorFactory = deps.monitorFactory;
    this.#balancer = createBalancer(config.balance, config.feature);
    if (needsTierRouter(config.mode, routing(config))) this.#router = new TierRouter(routing(config));
    this.#affinityFactory = deps.affinityFactory ?? createAffinity;
    this.#onServerChange = deps.onServerChange;
    this.#affinity = this.#affinityFactory(config.affinity, this);
    for (const sc of config.servers) this.#servers.push(this.#newServer(sc));
    this.#reindex();
    this.#building = false;
    this.#recompute('start');
  }

  get config(): PoolConfig {
    return this.#config;
  }
  get mode(): PoolConfig['mode'] {
    return this.#config.mode;
  }
  /** ServerOwner: a master pool with no master; its members' checks hurry (`fast_interval`) until one reports it. */
  seekingMaster(): boolean {
    return this.#config.mode === 'master' && this.#started && !this.#retired && this.#target === null;
  }
  get affinity(): PoolAffinity | null {
    return this.#affinity;
  }
  get failback(): FailbackConfig {
    return this.#config.failback;
  }
  get onDown(): 'keep' | 'close' {
    return this.#config.check.onDown;
  }
  get activeTier(): number {
    return this.#activeTier;
  }
  get retired(): boolean {
    return this.#retired;
  }
  get servers(): readonly Server[] {
    return this.#servers;
  }
  /** Current candidates for new clients (read-only view for stats and tests). */
  get candidates(): readonly Server[] {
    return this.#candidates;
  }

  server(name: string): Server | undefined {
    return this.#byName.get(name);
  }

  /** Starts the health monitors. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const s of this.#servers) s.monitor?.start();
  }

  /** Stops monitors and timers; live connections are the runtime's business. */
  stop(): void {
    this.#clearHold();
    for (const s of this.#servers) s.stop();
    this.#queue.clearTimers();
  }

  /** The pool left the configuration: no new clients; live connections stay until they end. */
  retire(): void {
    this.#retired = true;
    for (const s of this.#servers) s.retire();
    this.#recompute('removed from the configuration');
  }

  // ---- selection ----

  /**
   * The server for a new client. This is the seam where affinity plugs in: a binding (client IP -> server, or the
   * server a license handle names) is consulted first and its server returned while it takes bound clients;
   * otherwise the client is balanced and, by source, the binding recorded before any server connect.
   */
  select(ctx: SelectContext): SelectResult {
    const a = this.#affinity;
    return a === null ? this.balance(ctx) : a.select(ctx);
  }

  /** The client's connection ended: its affinity binding (if any) starts its TTL. */
  release(ctx: SelectContext): void {
    this.#affinity?.release(ctx);
  }

  /** Periodic clean-up of expired bindings (the runtime's sweeper, about once a second). */
  sweepAffinity(budget: number): void {
    this.#affinity?.sweep(budget);
  }

  /** Balancing alone: the candidates of the active tier through the algorithm. */
  balance(ctx: SelectContext): SelectResult {
    if (this.#holdTier >= 0) return 'full';
    if (this.#router !== null) return this.#router.balance(ctx, Date.now());
    const c = this.#candidates;
    if (c.length === 0) return null;
    const s = this.#balancer.pick(c, ctx, Date.now());
    if (s !== undefined) return s;
    const ex = ctx.exclude;
    if (ex === null) return 'full';
    for (let i = 0; i < c.length; i++) if (!ex.includes(c[i]!)) return 'full';
    return null;
  }

  /** Servers that take new clients now (any tier; in master mode only masters count). */
  usableCount(): number {
    const now = Date.now();
    let n = 0;
    for (const s of this.#servers) {
      if (s.takesNewClients(now) && (this.#config.mode !== 'master' || s.isMaster)) n++;
    }
    return n;
  }

  /** Whether a new client would be placed (now or after queueing); false = /ready reports this pool. */
  isAvailable(): boolean {
    return this.#candidates.length > 0 || this.#holdTier >= 0;
  }

  // ---- queue ----

  enqueue(w: Waiter): void {
    this.#queue.enqueue(w, this.#config.timeouts.queue);
  }

  /** Removes a waiter that went away (client closed, shutdown); false when it was not queued. */
  cancel(w: Waiter): boolean {
    return this.#queue.cancel(w);
  }

  queueTimedOut(w: Waiter): void {
    this.#queue.timedOut(w);
  }

  // ---- ServerOwner ----

  serverChanged(server: Server): void {
    this.#onServerChange?.(this, server);
    if (this.#building) return;
    this.#recompute('server state changed');
    if (this.#queue.length > 0) this.#queue.drain();
    // The first results are in and no server takes clients: those who waited for them are refused now, as they
    // would have been had the results been there when they came (a master pool's licd clients wait on for a master).
    const awaited = this.#awaitedFirstChecks;
    this.#awaitedFirstChecks = this.awaitingFirstChecks;
    if (awaited && this.#target === null && !this.#settling() && this.#queue.length > 0 && this.#config.mode !== 'master') this.#queue.refuseAll();
  }

  slotFreed(_server: Server): void {
    if (this.#queue.length > 0) this.#queue.drain();
  }

  // ---- reload ----

  /**
   * Applies a reloaded configuration of the same pool: servers are matched by name; unchanged ones keep state,
   * counters and connections; a server whose host changed is a different machine and is replaced.
   */
  update(config: PoolConfig): void {
    const prev = this.#config;
    this.#config = config;
    if (config.balance !== prev.balance || config.feature !== prev.feature) this.#balancer = createBalancer(config.balance, config.feature);
    if (!needsTierRouter(config.mode, routing(config))) this.#router = null;
    else if (this.#router === null) this.#router = new TierRouter(routing(config));
    else this.#router.configure(routing(config));
    if (config.failover.delay === 0) this.#clearHold();
    if (config.affinity.by !== prev.affinity.by) {
      // Another kind of key: the old bindings mean nothing now. Connections holding one release it harmlessly.
      this.#affinity = this.#affinityFactory(config.affinity, this);
    } else {
      this.#affinity?.configure(config.affinity);
    }
    const checkChanged = !sameCheck(prev.check, config.check);
    this.#building = true;
    const next: Server[] = [];
    const kept = new Set<Server>();
    for (const sc of config.servers) {
      const old = this.#byName.get(sc.name);
      if (old && old.host === sc.host) {
        old.update(sc);
        old.trackSeats(countsSeats(config), config.feature, config.check.port);
        kept.add(old);
        next.push(old);
        this.#reconcileMonitor(old, checkChanged);
      } else {
        const s = this.#newServer(sc);
        next.push(s);
        if (this.#started) s.monitor?.start();
      }
    }
    for (const s of this.#servers) {
      if (!kept.has(s)) {
        s.retire();
        this.log.info({ server: s.name, connections: s.counters.cur }, 'server removed from the configuration');
      }
    }
    this.#servers = next;
    this.#reindex();
    this.#building = false;
    this.#balancer.reset(this.#candidates);
    this.#recompute('reload', true);
    if (this.#queue.length > 0) this.#queue.drain();
  }

  #reconcileMonitor(s: Server, checkChanged: boolean): void {
    const wantMonitor = this.#monitorFactory !== undefined && this.#config.check.type !== 'none';
    if (!wantMonitor) {
      s.detachMonitor();
    } else if (!s.monitor) {
      s.attachMonitor(this.#monitorFactory!(s, this), true);
      if (this.#started) s.monitor!.start();
    } else if (checkChanged) {
      s.monitor.update(this.#config.check);
    }
  }

  #newServer(sc: ServerConfig): Server {
    const s = new Server(sc, this);
    s.trackSeats(countsSeats(this.#config), this.#config.feature, this.#config.check.port);
    if (this.#monitorFactory && this.#config.check.type !== 'none') s.attachMonitor(this.#monitorFactory(s, this));
    return s;
  }

  #reindex(): void {
    this.#byName.clear();
    this.#servers.forEach((s, i) => {
      s.index = i;
      this.#byName.set(s.name, s);
    });
  }

  // ---- candidates ----

  #recompute(reason: string, forceReset = false): void {
    const now = Date.now();
    this.#ordered = [...this.#servers].sort((a, b) => a.tier - b.tier || a.index - b.index);
    let cands = this.#retired ? [] : this.#usable(now, false);
    // A server still in its failback delay is better than none: with every other server gone, it serves.
    if (cands.length === 0 && !this.#retired) cands = this.#usable(now, true);
    const mode = this.#config.mode;
    let target: Target = null;
    if (cands.length > 0) {
      if (mode === 'balance') target = cands[0]!.tier;
      else {
        cands.length = 1;
        target = cands[0]!;
      }
    }
    if (this.#holds(cands.length > 0 ? cands[0]!.tier : -1, now)) {
      // New clients wait (the pool queue) for the tier that went away; bound clients of live servers still pass.
      this.#candidates = [];
      this.#router?.rebuild([]);
      return;
    }
    this.#activeTier = cands.length > 0 ? cands[0]!.tier : -1;
    if (forceReset || !sameMembers(cands, this.#candidates)) {
      this.#candidates = cands;
      this.#balancer.reset(cands);
    }
    if (this.#router !== null) this.#router.rebuild(mode === 'balance' ? this.#usableAll(now, cands) : cands);
    this.#noteTarget(target, reason, now);
  }

  /** Every usable server of every tier, in (tier, declaration) order; the relaxed `fallback` when there is none. */
  #usableAll(now: number, fallback: Server[]): Server[] {
    const out: Server[] = [];
    for (const s of this.#ordered) if (s.takesNewClients(now)) out.push(s);
    return out.length > 0 ? out : fallback;
  }

  /**
   * SPEC 8.1 `failover.delay`: the tier new clients went to became unusable and `next` (a higher tier) could take
   * them; they wait until it has stayed unusable this long. A blip does not move a whole site across the WAN.
   */
  #holds(next: number, now: number): boolean {
    const delay = this.#config.failover.delay;
    const from = this.#holdTier >= 0 ? this.#holdTier : this.#activeTier;
    const settled = this.#started && !this.#retired && this.#lastTargetSettled && this.#config.mode !== 'master';
    if (delay === 0 || !settled || from < 0 || next <= from) {
      this.#clearHold();
      return false;
    }
    if (this.#holdTier !== from) {
      this.#holdTier = from;
      this.#holdSince = now;
      this.log.warn({ tier: from, next, delay }, `tier ${from} is unusable: new clients wait up to the failover delay before moving to tier ${next}`);
      this.events.add({ kind: 'pool', pool: this.name, from: `tier ${from}`, to: `waiting (failover delay)`, reason: 'tier unusable' }, now);
    }
    const left = this.#holdSince + delay - now;
    if (left <= 0) {
      this.#clearHold();
      return false;
    }
    // (Re-)armed for what is left: a timer may fire a millisecond early by Date.now()'s reckoning.
    if (this.#holdTimer === null) {
      this.#holdTimer = setTimeout(onHoldOver, left, this);
      this.#holdTimer.unref();
    }
    return true;
  }

  #clearHold(): void {
    if (this.#holdTimer !== null) clearTimeout(this.#holdTimer);
    this.#holdTimer = null;
    this.#holdTier = -1;
  }

  /** The failover delay ran out (timer). */
  holdOver(): void {
    this.#holdTimer = null;
    this.#recompute('failover delay over');
    if (this.#queue.length > 0) this.#queue.drain();
  }

  /**
   * New clients go back to a lower tier (SPEC 8.1): step them back if `failback.steps` says so, and drop the
   * bindings of clients with no open connection to a higher tier, so their next session comes back too. Bound
   * clients with open connections keep their server.
   */
  #failedBack(from: number, to: number, now: number): void {
    this.#router?.failedBack(from, to, now);
    const dropped = this.#affinity?.dropIdle?.((s) => s.tier > to) ?? 0;
    if (dropped > 0) this.log.info({ dropped, tier: to }, 'failback: idle affinity bindings to higher tiers dropped');
  }

  /** Usable servers of the lowest tier that has one; in master mode, the masters. */
  #usable(now: number, relaxed: boolean): Server[] {
    const out: Server[] = [];
    const master = this.#config.mode === 'master';
    let tier = -1;
    for (const s of this.#ordered) {
      if (tier >= 0 && s.tier !== tier && !master) break;
      if (!s.takesNewClients(now, relaxed)) continue;
      if (master && !s.isMaster) continue;
      if (tier < 0) tier = s.tier;
      if (master || s.tier === tier) out.push(s);
    }
    return out;
  }

  #noteTarget(target: Target, reason: string, now: number): void {
    const prev = this.#target;
    if (target === prev) {
      // The last first result came in and confirmed the target: moves from it count from now on.
      if (target !== null && !this.#lastTargetSettled && !this.#settling()) this.#lastTargetSettled = true;
      return;
    }
    this.#target = target;
    if (target === null) {
      const why = this.#config.mode === 'master' ? 'no server reports MASTER' : 'no usable server';
      // Clients wait for the next master: ask every member now rather than at its next `interval`.
      if (this.seekingMaster()) for (const s of this.#servers) s.monitor?.checkSoon?.();
      if (this.#started && !this.#retired) {
        this.log.error({ reason }, `pool unavailable: ${why}`);
        this.events.add({ kind: 'pool', pool: this.name, from: describe(prev), to: 'unavailable', reason: why }, now);
      }
      return;
    }
    const last = this.#lastTarget;
    const lastSettled = this.#lastTargetSettled;
    this.#lastTarget = target;
    // A new master: licd connections still waiting for an answer from the old one follow (a frozen master would
    // hold them until it wakes up).
    if (this.#config.mode === 'master' && last instanceof Server && last !== target) {
      for (const c of [...last.conns]) c.masterMoved?.();
    }
    this.#lastTargetSettled = !this.#settling();
    if (prev === null && this.#started && last !== null) {
      this.log.info({ to: describe(target) }, 'pool available again');
    }
    // While first check results are still coming in, the target settles: neither the moves meanwhile nor the first
    // move away from a target chosen then (the secondary answered first, then the primary) is a failover.
    if (last === null || last === target || !this.#lastTargetSettled || !lastSettled) return;
    const back = this.#config.mode !== 'master' && rank(target) < rank(last);
    const kind = back ? 'failback' : 'failover';
    if (back) this.#failedBack(tierOf(last), tierOf(target), now);
    else this.#router?.failedOver();
    this.counters.failovers++;
    this.counters.lastFailover = now;
    const fields = { from: describe(last), to: describe(target), reason };
    this.log.warn(fields, `${kind}: new clients go to ${describe(target)}`);
    this.events.add({ kind, pool: this.name, ...fields }, now);
  }

  /**
   * No server takes clients yet because first check results are still coming in (a process just started: with
   * socket activation, clients that waited in the backlog arrive at once). A new client waits in the queue for them
   * (`timeouts.queue`) instead of being refused.
   */
  get awaitingFirstChecks(): boolean {
    return this.#target === null && this.#settling();
  }

  #settling(): boolean {
    for (const s of this.#servers) if (s.health === 'unknown') return true;
    return false;
  }

  snapshot(now = Date.now()): PoolSnapshot {
    const t = this.#target;
    const a = this.#affinity;
    const byServer = a?.countByServer();
    return {
      name: this.name,
      mode: this.#config.mode,
      balance: this.#config.balance,
      available: this.isAvailable(),
      usable: this.usableCount(),
      activeTier: this.#activeTier,
      activeServer: t instanceof Server ? t.name : null,
      counters: { ...this.counters },
      affinity: a?.snapshot() ?? noAffinity(this.#config),
      feature: this.#config.feature,
      featureServed: this.#config.feature === null ? null : this.#servers.some((s) => s.serves(this.#config.feature!)),
      failoverHold:
        this.#holdTier < 0 ? null : { tier: this.#holdTier, since: this.#holdSince, until: this.#holdSince + this.#config.failover.delay },
      failbackStepping: this.#router?.stepping(now) ?? null,
      servers: this.#servers.map((s) => s.snapshot(now, byServer?.get(s) ?? 0)),
    };
  }
}

function noAffinity(c: PoolConfig): AffinitySnapshot {
  const { ttl, maxBindings } = c.affinity;
  return { by: 'none', bindings: 0, hits: 0, misses: 0, evictions: 0, capacityEvictions: 0, expired: 0, ttl, maxBindings };
}

function onHoldOver(pool: Pool): void {
  pool.holdOver();
}

/** Pools that count seats given out between checks (SPEC 8.1). */
function countsSeats(c: PoolConfig): boolean {
  return c.balance === 'seats' || c.overflow !== null;
}

function routing(c: PoolConfig): TierRouting {
  return { balance: c.balance, feature: c.feature, overflow: c.overflow, steps: c.failback.steps, stepInterval: c.failback.stepInterval };
}

function tierOf(t: Target): number {
  return t === null ? Infinity : typeof t === 'number' ? t : t.tier;
}

function describe(t: Target): string {
  if (t === null) return 'none';
  return typeof t === 'number' ? `tier ${t}` : `server ${t.name}`;
}

/** Order of preference: lower tier, then declaration. Moving to a better target is a failback. */
function rank(t: Target): number {
  if (t === null) return Infinity;
  return typeof t === 'number' ? t * 1e6 : t.tier * 1e6 + t.index;
}

function sameMembers(a: readonly Server[], b: readonly Server[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameCheck(a: CheckConfig, b: CheckConfig): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
