/**
 * One backend server of a pool: its configuration, administrative and health state, counters and live
 * connections. The pool decides where clients go; the server only answers "do you take new clients?" and tells
 * its pool when the answer may have changed.
 */
import type { Logger } from '../common/logger.ts';
import { LpxError } from '../common/errors.ts';
import type { AdminState, FailbackConfig, ServerConfig } from '../config/proxy-config.ts';
import { CHECK_DURATION_BUCKETS, type CheckDurations, type CheckResult, type HealthMonitorLike, type HealthState, type HealthSubject } from '../health/types.ts';
import type { Closable, EndReason } from './end-reason.ts';
import type { EventLog } from './event-log.ts';
import type { BindingTarget } from './affinity/affinity-table.ts';
import { SeatLedger } from './seats/seat-ledger.ts';

/** Status as HAProxy writes it on its stats page (the monitor's `statusText` adds `DOWN 1/2` and friends). */
export type ServerStatus = 'UP' | 'DOWN' | 'DRAIN' | 'MAINT' | 'NOLB' | 'no check';

export interface ServerCounters {
  /** Connections assigned to this server now (connecting or established). */
  cur: number;
  max: number;
  /** Sessions that reached the server (connected); refused attempts count in `connectErrors` instead. */
  total: number;
  /** Client -> server bytes, added when a connection ends. */
  bytesIn: number;
  /** Server -> client bytes, added when a connection ends. */
  bytesOut: number;
  connectErrors: number;
  retries: number;
  redispatches: number;
  failedChecks: number;
  /** UP -> DOWN transitions. */
  downTransitions: number;
  /** DOWN -> UP transitions. */
  upTransitions: number;
  /** Date.now() of the last status change. */
  lastChange: number;
  /** Milliseconds spent DOWN, the current DOWN period excluded (see `snapshot`). */
  downtime: number;
}

/** What a server needs of the pool that owns it. */
export interface ServerOwner {
  readonly name: string;
  readonly log: Logger;
  readonly events: EventLog;
  readonly failback: FailbackConfig;
  readonly onDown: 'keep' | 'close';
  /** The server's eligibility may have changed: recompute candidates. */
  serverChanged(server: Server): void;
  /** A connection slot of the server was released: waiting clients may proceed. */
  slotFreed(server: Server): void;
  /** `master` pools: no server takes new clients because none reports (MASTER) (checks hurry to find one). */
  seekingMaster?(): boolean;
  readonly mode?: 'balance' | 'failover' | 'master';
}

export interface ServerSnapshot {
  name: string;
  host: string;
  ports: Record<string, number>;
  tier: number;
  weight: number;
  effectiveWeight: number;
  adminState: AdminState;
  health: HealthState;
  status: ServerStatus;
  /** The monitor's transitional text (`DOWN 1/2`), or the status when there is no monitor. */
  checkStatus: string;
  checked: boolean;
  takesNewClients: boolean;
  maxConnections: number;
  upSince: number;
  lastCheck: CheckResult | null;
  checkDurations: CheckDurations;
  counters: ServerCounters;
  /** Live affinity bindings to this server (0 when the pool has no affinity table). */
  bindings: number;
  /**
   * Pools that count seats (`balance: seats`, `overflow`): free seats of the pool's feature (all features when it
   * names none) by the last check minus those given out since; null = not counted or no check data yet.
   */
  freeSeats: number | null;
  countsSeats: boolean;
  /** Counted and 0 free: FULL for new clients (SPEC 8.1), not DOWN. */
  full: boolean;
}

/** The state a worker process mirrors from the primary, which runs the checks and the admin API. */
export interface ServerMirror {
  health: HealthState;
  admin: AdminState;
  weight: number;
  master: boolean;
}

export class Server implements HealthSubject, BindingTarget {
  readonly name: string;
  readonly host: string;
  ports: Readonly<Record<string, number>>;
  tier: number;
  maxConnections: number;
  maintKill: boolean;
  /** Position in the pool's declaration order (failover mode and `first` walk it). */
  index = 0;
  /**
   * Moves on whenever the server's affinity bindings must go (it went DOWN or MAINT, or left the configuration):
   * bindings made under an older epoch are stale, so dropping them all is O(1) (see AffinityTable).
   */
  bindingEpoch = 0;
  readonly counters: ServerCounters = {
    cur: 0,
    max: 0,
    total: 0,
    bytesIn: 0,
    bytesOut: 0,
    connectErrors: 0,
    retries: 0,
    redispatches: 0,
    failedChecks: 0,
    downTransitions: 0,
    upTransitions: 0,
    lastChange: Date.now(),
    downtime: 0,
  };
  readonly conns = new Set<Closable>();
  readonly checkDurations: CheckDurations = { buckets: CHECK_DURATION_BUCKETS.map(() => 0), sumSeconds: 0, count: 0 };

  #owner: ServerOwner;
  #log: Logger;
  #config: ServerConfig;
  #weight: number;
  #admin: AdminState;
  #health: HealthState = 'up';
  #status: ServerStatus;
  #monitor: HealthMonitorLike | null = null;
  #lastCheck: CheckResult | null = null;
  #upSince: number;
  #downSince = 0;
  /** Date.now() of the last DOWN -> UP transition (0: none since start, so no failback applies). */
  #recoveredAt = 0;
  #failbackTimer: NodeJS.Timeout | null = null;
  #retired = false;
  /** Set by `mirror` in a worker process; null: from this process's own checks. */
  #master: boolean | null = null;
  /** SPEC 8: feature names the configuration says this server serves. */
  features: readonly string[];
  /** Seats given out since the last check; null unless the pool counts seats (`trackSeats`). */
  seatLedger: SeatLedger | null = null;
  #seatFeature: string | null = null;

  constructor(config: ServerConfig, owner: ServerOwner) {
    this.name = config.name;
    this.host = config.host;
    this.ports = config.ports;
    this.tier = config.tier;
    this.maxConnections = config.maxConnections;
    this.maintKill = config.maintKill;
    this.features = config.features;
    this.#config = config;
    this.#weight = config.weight;
    this.#admin = config.state;
    this.#owner = owner;
    this.#log = owner.log.child({ server: config.name });
    this.#upSince = Date.now();
    this.#status = this.#computeStatus(this.#upSince);
  }

  get weight(): number {
    return this.#weight;
  }
  get adminState(): AdminState {
    return this.#admin;
  }
  get health(): HealthState {
    return this.#health;
  }
  get status(): ServerStatus {
    return this.#status;
  }
  get lastCheck(): CheckResult | null {
    return this.#lastCheck;
  }
  /** Date.now() since when the server has been UP; 0 while not UP. */
  get upSince(): number {
    return this.#health === 'up' ? this.#upSince : 0;
  }
  get monitor(): HealthMonitorLike | null {
    return this.#monitor;
  }
  get retired(): boolean {
    return this.#retired;
  }
  /** From the last lmstat-style check: this server is the serving member of its redundant set. */
  get isMaster(): boolean {
    return this.#master ?? this.#lastCheck?.master === true;
  }

  /** HealthSubject: a master pool with no master checks every member at `fast_interval`. */
  hurried(): boolean {
    return this.#owner.seekingMaster?.() === true;
  }

  /**
   * HealthSubject: in a master pool, a DOWN member whose check passes and reports (MASTER) is UP at once: it is the
   * only member that can serve, and `rise` would only keep clients waiting for it (licd elected it with quorum).
   */
  upAtOnce(result: CheckResult): boolean {
    return this.#owner.mode === 'master' && result.master === true;
  }

  /** A new client may be balanced here (capacity aside). `relaxed` ignores a pending failback delay. */
  takesNewClients(now: number, relaxed = false): boolean {
    if (this.#retired || this.#admin !== 'ready' || this.#health !== 'up' || this.#weight === 0) return false;
    return relaxed || !this.#inFailbackDelay(now);
  }

  /** A client already bound to this server (affinity) may still be sent here: `drain` and weight 0 allow it. */
  takesBoundClients(): boolean {
    return !this.#retired && this.#admin !== 'maint' && this.#health === 'up';
  }

  isFull(): boolean {
    return this.maxConnections > 0 && this.counters.cur >= this.maxConnections;
  }

  /**
   * Weight used for balancing now: the configured (or admin-set) weight, ramped over `failback.slowstart` after
   * a recovery. Never below 1 for a server that is a candidate at all, so arithmetic stays well defined.
   */
  effectiveWeight(now: number): number {
    const w = this.#weight;
    if (this.#recoveredAt === 0 || w === 0) return w;
    const { delay, slowstart } = this.#owner.failback;
    const start = this.#recoveredAt + delay;
    if (slowstart === 0 || now >= start + slowstart) return w;
    if (now <= start) return 1;
    return Math.max(1, Math.ceil((w * (now - start)) / slowstart));
  }

  #inFailbackDelay(now: number): boolean {
    return this.#recoveredAt !== 0 && now < this.#recoveredAt + this.#owner.failback.delay;
  }

  // ---- license knowledge (SPEC 8) ----

  /**
   * The pool counts seats of `feature` (null: summed over every feature) held through connections to `port`
   * (SPEC 8.1); `on: false` stops counting.
   */
  trackSeats(on: boolean, feature: string | null, port: string): void {
    this.#seatFeature = feature;
    if (!on) this.seatLedger = null;
    else if (this.seatLedger === null || this.seatLedger.port !== port) {
      const l = new SeatLedger(port);
      for (const c of this.conns) if (c.portName === port) l.placed();
      this.seatLedger = l;
    }
  }

  /** Whether the server serves `feature`: listed in its `features:`, or seen in its last lmstat / external check. */
  serves(feature: string): boolean {
    if (this.features.includes(feature)) return true;
    const usage = this.#lastCheck?.features;
    return usage !== undefined && usage.some((f) => f.name === feature);
  }

  /**
   * Free seats of `feature` (null: summed over the server's features), never below 0; null while no check has
   * reported usage. For the pool's own feature, seats in use are the ledger's estimate (seats held elsewhere at the
   * last check plus this proxy's connections now); for another, the last check's figure.
   */
  freeSeatsOf(feature: string | null): number | null {
    const free = this.seatOutlook(feature);
    return free === null ? null : free > 0 ? free : 0;
  }

  /** As `freeSeatsOf`, but below 0 when more clients were sent than seats: how far over a full server is. */
  seatOutlook(feature: string | null): number | null {
    const u = this.seatUsage(feature);
    return u === null ? null : u.issued - u.inUse;
  }

  /** Seats of `feature` (null: every feature) issued (expired ones excluded) and in use (estimated, see above). */
  seatUsage(feature: string | null): { issued: number; inUse: number } | null {
    const usage = this.#lastCheck?.features;
    if (usage === undefined) return null;
    let issued = 0;
    let inUse = 0;
    for (const f of usage) {
      if (feature !== null && f.name !== feature) continue;
      // An expired feature grants nothing, whatever its count.
      if (f.expired !== true) issued += f.issued;
      inUse += f.inUse;
    }
    const l = this.seatLedger;
    if (l !== null && feature === this.#seatFeature) inUse = l.external + l.open;
    return { issued, inUse };
  }

  /** The pool counts seats and this server has none left for new clients (FULL, SPEC 8.1). */
  get seatFull(): boolean {
    if (this.seatLedger === null) return false;
    return this.freeSeatsOf(this.#seatFeature) === 0;
  }

  // ---- health (driven by a HealthMonitorLike) ----

  /**
   * Attaches the monitor that will drive `setHealth`. A new server is then `unknown` until its first result; a
   * server that was already serving unchecked (a reload added a check) keeps its state until the monitor decides.
   */
  attachMonitor(monitor: HealthMonitorLike, keepState = false): void {
    this.#monitor = monitor;
    if (!keepState && this.#health !== 'down') this.#health = 'unknown';
    this.#refresh('health check configured');
  }

  /** Detaches (and stops) the monitor: an unchecked server is assumed UP, as in HAProxy ("no check"). */
  detachMonitor(): void {
    const m = this.#monitor;
    if (!m) return;
    this.#monitor = null;
    m.stop();
    this.setHealth('up', 'health check removed');
  }

  setHealth(state: 'up' | 'down', reason: string): void {
    const prev = this.#health;
    if (state === prev) return;
    const now = Date.now();
    this.#health = state;
    if (state === 'up') {
      this.#upSince = now;
      if (prev === 'down') {
        this.counters.upTransitions++;
        this.counters.downtime += now - this.#downSince;
        this.#recoveredAt = now;
        const { delay } = this.#owner.failback;
        if (delay > 0) {
          this.#clearFailbackTimer();
          this.#failbackTimer = setTimeout(onFailbackDelayOver, delay, this);
          this.#failbackTimer.unref();
        }
      }
    } else {
      this.#downSince = now;
      this.#recoveredAt = 0;
      this.#clearFailbackTimer();
      if (prev === 'up') this.counters.downTransitions++;
    }
    this.#refresh(reason, now);
    if (state === 'down' && this.#owner.onDown === 'close') this.closeAll('server_down');
  }

  recordCheck(result: CheckResult): void {
    const wasMaster = this.isMaster;
    this.#lastCheck = result;
    const l = this.seatLedger;
    if (l !== null && result.features !== undefined) {
      let inUse = 0;
      for (const f of result.features) if (this.#seatFeature === null || f.name === this.#seatFeature) inUse += f.inUse;
      l.checked(inUse);
    }
    if (!result.ok) this.counters.failedChecks++;
    const d = this.checkDurations;
    const seconds = result.durationMs / 1000;
    d.count++;
    d.sumSeconds += seconds;
    const b = CHECK_DURATION_BUCKETS.findIndex((le) => seconds <= le);
    if (b !== -1) d.buckets[b]!++;
    if (this.isMaster !== wasMaster) this.#owner.serverChanged(this);
  }

  /** Called by the failback timer. */
  failbackDelayOver(): void {
    this.#failbackTimer = null;
    // The timer runs on the event loop's monotonic clock, the delay is judged on Date.now(): each clock rounds to
    // whole milliseconds on its own, so the timer may fire up to a millisecond before `#inFailbackDelay` agrees.
    // Refreshing then would leave the server NOLB with no timer left to end it (no failback, ever): wait the rest.
    const rest = this.#recoveredAt + this.#owner.failback.delay - Date.now();
    if (rest > 0) {
      this.#failbackTimer = setTimeout(onFailbackDelayOver, rest, this);
      this.#failbackTimer.unref();
      return;
    }
    this.#refresh('failback delay over');
  }

  // ---- mirrored state (worker processes) ----

  /** What a worker needs to route like the primary does. */
  mirrorState(): ServerMirror {
    return { health: this.#health, admin: this.#admin, weight: this.#weight, master: this.isMaster };
  }

  /**
   * Worker process: applies the state the primary decided, through the same transitions as here (failback delay,
   * `on_down: close`, `maint_kill`). A worker's pools log nothing of this: the primary logs each change once.
   */
  mirror(m: ServerMirror): void {
    const masterChanged = m.master !== this.isMaster;
    this.#master = m.master;
    if (m.admin !== this.#admin) this.setAdminState(m.admin, 'primary');
    if (m.weight !== this.#weight) this.setWeight(m.weight, 'primary');
    if (m.health !== 'unknown' && m.health !== this.#health) this.setHealth(m.health, 'primary');
    else if (masterChanged) this.#owner.serverChanged(this);
  }

  // ---- administration ----

  setAdminState(state: AdminState, reason = 'admin'): void {
    if (state === this.#admin) return;
    const from = this.#admin;
    this.#admin = state;
    this.#owner.events.add({ kind: 'admin', pool: this.#owner.name, server: this.name, from, to: state, reason });
    this.#refresh(`${reason}: state ${state}`);
    if (state === 'maint' && this.maintKill) this.closeAll('admin');
  }

  setWeight(weight: number, reason = 'admin'): void {
    if (!Number.isInteger(weight) || weight < 0 || weight > 256) {
      throw new LpxError('LPX_ERR_USAGE', `weight must be a whole number 0..256, got ${weight}`);
    }
    if (weight === this.#weight) return;
    const from = this.#weight;
    this.#weight = weight;
    this.#owner.events.add({
      kind: 'admin',
      pool: this.#owner.name,
      server: this.name,
      from: `weight ${from}`,
      to: `weight ${weight}`,
      reason,
    });
    this.#refresh(`${reason}: weight ${weight}`);
  }

  /**
   * Applies a reloaded configuration of the same server. Weight and state follow the file only where the file
   * changed them, so a reload does not undo what an operator set through the admin API.
   */
  update(config: ServerConfig): void {
    const prev = this.#config;
    this.#config = config;
    this.ports = config.ports;
    this.tier = config.tier;
    this.maxConnections = config.maxConnections;
    this.maintKill = config.maintKill;
    this.features = config.features;
    if (config.weight !== prev.weight) this.#weight = config.weight;
    if (config.state !== prev.state) this.#admin = config.state;
    this.#refresh('reload');
  }

  /** Drops every affinity binding to this server (admin): bound clients are balanced anew on their next connection. */
  clearBindings(reason = 'admin'): void {
    this.bindingEpoch++;
    this.#owner.events.add({ kind: 'admin', pool: this.#owner.name, server: this.name, to: 'bindings cleared', reason });
    this.#log.info({ reason }, 'affinity bindings cleared');
  }

  /** Removed from the configuration: no new clients; live connections stay until they end. */
  retire(): void {
    this.#retired = true;
    this.bindingEpoch++;
    this.#clearFailbackTimer();
    const m = this.#monitor;
    this.#monitor = null;
    m?.stop();
  }

  /** Stops timers and the monitor (balancer shutdown). */
  stop(): void {
    this.#clearFailbackTimer();
    this.#monitor?.stop();
  }

  // ---- connections ----

  attach(conn: Closable): void {
    const c = this.counters;
    c.cur++;
    if (c.cur > c.max) c.max = c.cur;
    this.conns.add(conn);
    const l = this.seatLedger;
    if (l !== null && conn.portName === l.port) l.placed();
  }

  /** A session reached this server. Counted here, not at attach: a refused attempt is a connect error, not a session. */
  connected(): void {
    this.counters.total++;
  }

  detach(conn: Closable, bytesIn: number, bytesOut: number): void {
    if (!this.conns.delete(conn)) return;
    const l = this.seatLedger;
    if (l !== null && conn.portName === l.port) l.ended();
    const c = this.counters;
    c.cur--;
    c.bytesIn += bytesIn;
    c.bytesOut += bytesOut;
    this.#owner.slotFreed(this);
  }

  closeAll(reason: EndReason): void {
    if (this.conns.size === 0) return;
    this.#log.warn({ connections: this.conns.size, end: reason }, 'closing the connections of the server');
    for (const c of [...this.conns]) c.close(reason);
  }

  snapshot(now = Date.now(), bindings = 0): ServerSnapshot {
    const counters = { ...this.counters };
    if (this.#health === 'down') counters.downtime += now - this.#downSince;
    // Bytes of live connections too, as HAProxy shows them: a license held for days would otherwise show 0.
    for (const c of this.conns) {
      counters.bytesIn += c.bytesIn;
      counters.bytesOut += c.bytesOut;
    }
    return {
      name: this.name,
      host: this.host,
      ports: { ...this.ports },
      tier: this.tier,
      weight: this.#weight,
      effectiveWeight: this.takesNewClients(now) ? this.effectiveWeight(now) : 0,
      adminState: this.#admin,
      health: this.#health,
      status: this.#status,
      checkStatus: this.#monitor?.statusText ?? this.#status,
      checked: this.#monitor !== null,
      takesNewClients: this.takesNewClients(now),
      maxConnections: this.maxConnections,
      upSince: this.upSince,
      lastCheck: this.#lastCheck ? { ...this.#lastCheck } : null,
      checkDurations: { ...this.checkDurations, buckets: [...this.checkDurations.buckets] },
      counters,
      bindings,
      freeSeats: this.seatLedger === null ? null : this.freeSeatsOf(this.#seatFeature),
      full: this.seatFull,
      countsSeats: this.seatLedger !== null,
    };
  }

  // ---- the one place the status changes ----

  #computeStatus(now: number): ServerStatus {
    if (this.#admin === 'maint') return 'MAINT';
    if (this.#health === 'down') return 'DOWN';
    if (this.#admin === 'drain') return 'DRAIN';
    if (this.#health === 'unknown') return 'no check';
    if (this.#weight === 0 || this.#inFailbackDelay(now)) return 'NOLB';
    return this.#monitor ? 'UP' : 'no check';
  }

  /** Recomputes the status (logging and recording a change once) and tells the pool to recompute candidates. */
  #refresh(reason: string, now = Date.now()): void {
    const next = this.#computeStatus(now);
    const prev = this.#status;
    if (next !== prev) {
      this.#status = next;
      this.counters.lastChange = now;
      // SPEC 2.3/2.4: a server going DOWN or into MAINT drops its affinity bindings; its clients are balanced anew.
      if (next === 'DOWN' || next === 'MAINT') this.bindingEpoch++;
      const fields = { from: prev, to: next, reason };
      if (next === 'DOWN') this.#log.warn(fields, 'server is DOWN');
      else this.#log.info(fields, `server is ${next}`);
      this.#owner.events.add({ kind: 'server', pool: this.#owner.name, server: this.name, from: prev, to: next, reason }, now);
    }
    this.#owner.serverChanged(this);
  }

  #clearFailbackTimer(): void {
    if (this.#failbackTimer) clearTimeout(this.#failbackTimer);
    this.#failbackTimer = null;
  }
}

function onFailbackDelayOver(server: Server): void {
  server.failbackDelayOver();
}
