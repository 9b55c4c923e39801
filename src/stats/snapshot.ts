/**
 * What the stats endpoint reads (SPEC 3): a snapshot of plain, JSON-serialisable data taken at one instant, and the
 * hooks the admin API calls. The stats code never sees the proxy's live objects; an adapter in the runtime builds
 * these, so a slow HTTP reader can never hold or slow down anything on the forwarding path.
 *
 * Conventions: times are `Date.now()` milliseconds; durations are milliseconds; byte directions follow HAProxy
 * (`bytesIn` = client -> server, the request direction; `bytesOut` = server -> client).
 */

export type AdminState = 'ready' | 'drain' | 'maint';

/** A server's status as HAProxy writes it. */
export type SteadyStatus = 'UP' | 'DOWN' | 'DRAIN' | 'MAINT' | 'NOLB' | 'FULL' | 'no check';
/** `UP 1/3`: UP, one failed check of `fall` 3 seen (falling). `DOWN 1/2`: DOWN, one good check of `rise` 2 (rising). */
export type TransitionalStatus = `UP ${number}/${number}` | `DOWN ${number}/${number}`;
export type ServerStatus = SteadyStatus | TransitionalStatus;

export type PoolMode = 'balance' | 'failover' | 'master';
export type AffinityBy = 'source' | 'handle' | 'none';

export interface ProcessStats {
  pid: number;
  uptimeMs: number;
  /** licproxy's version (package.json). */
  version: string;
  /** Date.now() at start. */
  startedAt: number;
  /** With `global.workers` > 1: the worker processes (pid 0: being replaced). */
  workers?: { index: number; pid: number; startedAt: number; restarts: number; connections: number }[];
  /** Reloads of the configuration since start (SIGHUP, `POST /api/reload`). */
  reloads?: ReloadStats;
  /** SPEC 10 `alerts:`: delivery counters per alert (absent without alerts). */
  alerts?: AlertDeliveryStats[];
}

export interface AlertDeliveryStats {
  name: string;
  /** Messages delivered (2xx) / given up after every retry / dropped from a full queue. */
  ok: number;
  failed: number;
  dropped: number;
  queued: number;
}

export interface ReloadStats {
  ok: number;
  failed: number;
  /** Date.now() of the last configuration loaded and applied; the start counts. */
  lastSuccessAt: number;
  /** The last reload (null: none since start); `error` is its first error line. */
  last: { at: number; ok: boolean; error: string | null } | null;
}

export interface FrontendStats {
  name: string;
  /** `host:port` as configured (`[::1]:port` for IPv6). */
  listen: string;
  pool: string;
  /** Named port of the server this frontend forwards to. */
  port: string;
  status: 'OPEN' | 'STOPPED';
  scur: number;
  smax: number;
  /** Configured limit; null = no frontend limit. */
  slim: number | null;
  stot: number;
  /** Closed at accept by the allow list or a connection limit. */
  denied: number;
  bytesIn: number;
  bytesOut: number;
}

/** Per-feature license usage from the last lmstat-style check (in use / issued). */
export interface FeatureStats {
  name: string;
  issued: number;
  inUse: number;
  expiry?: string;
  expired?: boolean;
}

export interface LastCheck {
  ok: boolean;
  /** `ok`, or why it failed (`connect refused`, `timeout after 500ms`, ...). */
  reason: string;
  durationMs: number;
  /** Date.now() when the check ended. */
  at: number;
}

export interface ServerStats {
  name: string;
  host: string;
  /** Every named port, overrides applied. */
  ports: Record<string, number>;
  /** 0 = active; 1, 2, ... = backup tiers. */
  tier: number;
  weight: { effective: number; configured: number };
  adminState: AdminState;
  status: ServerStatus;
  scur: number;
  smax: number;
  /** Per-server connection limit; null = none. */
  slim: number | null;
  stot: number;
  bytesIn: number;
  bytesOut: number;
  connectErrors: number;
  retries: number;
  redispatches: number;
  checkFailures: number;
  /** UP -> DOWN transitions (HAProxy chkdown). */
  downTransitions: number;
  /** DOWN/unknown -> UP transitions. */
  upTransitions: number;
  lastCheck: LastCheck | null;
  /**
   * Every check's duration since start: non-cumulative counts per bucket of CHECK_BUCKETS (render-prometheus.ts),
   * sum and count. Absent: the exporter samples `lastCheck` once per new result instead.
   */
  checkDurations?: { buckets: readonly number[]; sumSeconds: number; count: number };
  /** Date.now() of the last UP <-> DOWN change; null = none since start. */
  lastChangeAt: number | null;
  /** Total time spent DOWN since start, including the current DOWN period. */
  downtimeMs: number;
  /** Affinity bindings pointing at this server. */
  bindings: number;
  /** From lmstat checks: whether the server reported `(MASTER)`; absent when unknown. */
  master?: boolean;
  features: FeatureStats[];
  /**
   * SPEC 8.1, pools that count seats: free seats of the pool's feature (last check less those given out since);
   * null = no check data yet. Absent in pools that do not count seats. Status `FULL` when 0.
   */
  freeSeats?: number | null;
}

export interface PoolTotals {
  scur: number;
  smax: number;
  slim: number | null;
  stot: number;
  bytesIn: number;
  bytesOut: number;
  connectErrors: number;
  retries: number;
  redispatches: number;
}

export interface PoolStats {
  name: string;
  mode: PoolMode;
  balance: string;
  /** Whether a new client can be served now (a usable server exists; in `master` mode, a usable master). */
  available: boolean;
  /** Servers that can take new clients now. */
  usable: number;
  /** Tier new clients go to; null when none is usable. */
  activeTier: number | null;
  failovers: number;
  lastFailoverAt: number | null;
  affinity: { by: AffinityBy; bindings: number; hits: number; misses: number; evictions: number };
  /** Pair/triad status from lmstat (`paired and synced`, `peer not available`, ...); absent when not redundant. */
  redundancy?: string;
  totals: PoolTotals;
  queue: { cur: number; max: number };
  /** Date.now() of the last change of `available`; null = none since start. */
  lastChangeAt?: number | null;
  /** Time the whole pool spent unavailable. */
  downtimeMs?: number;
  /** licd pools: outcomes of the connections' first CHECKOUT per server and feature (SPEC 8.2); absent otherwise. */
  checkouts?: CheckoutStats[];
  /** SPEC 8: the pool's `feature`, and whether any server serves it (`false`: a configuration mistake, shown). */
  feature?: string;
  featureServed?: boolean;
  /** `failover.delay`: new clients wait for this tier until `until` before moving on. */
  failoverHold?: { tier: number; since: number; until: number };
  /** A stepped failback in progress: the recovered tier `to` gets `share` (0..1) of new clients. */
  failbackStepping?: { from: number; to: number; share: number; step: number; steps: number };
  servers: ServerStats[];
}

export interface CheckoutStats {
  /** `-` for answers the proxy gave itself (UNKNOWN_FEATURE). */
  server: string;
  feature: string;
  granted: number;
  denied: number;
  /** Part of `granted`: denied EXHAUSTED elsewhere first (retry_denied), a false denial avoided. */
  retriedSaved: number;
  queueWaits: number;
}

export interface StatsSnapshot {
  /** Date.now() when taken; ages on the page are relative to it. */
  at: number;
  process: ProcessStats;
  frontends: FrontendStats[];
  pools: PoolStats[];
}

export type StatsEventType = 'up' | 'down' | 'failover' | 'failback' | 'reload' | 'admin' | 'pool' | 'worker' | 'other';

export interface StatsEvent {
  at: number;
  type: StatsEventType;
  pool?: string;
  server?: string;
  from?: string;
  to?: string;
  reason: string;
}

/** Outcome of an admin change; `no_pool` / `no_server` answer 404. */
export type AdminResult =
  | { ok: true }
  | { ok: false; error: 'no_pool' | 'no_server' | 'invalid'; message: string };

export type ReloadResult = { ok: true } | { ok: false; error: string };

/** One admin request that was authorised, for the event log. */
export interface AdminAction {
  action: 'set-server' | 'reload';
  pool?: string;
  server?: string;
  state?: AdminState;
  weight?: number;
  bindings?: 'clear';
  /** Caller's `address:port`. */
  remote: string;
  ok: boolean;
  /** Why it failed, when it did. */
  error?: string;
}

/** What the stats server reads and calls. The runtime supplies an adapter; tests supply a scripted fake. */
export interface StatsSource {
  /** A fresh snapshot; callers may keep it, the source never mutates it afterwards. */
  snapshot(): StatsSnapshot;
  /** Present when counters live elsewhere (cluster workers): awaited before a snapshot is rendered. */
  refresh?(): Promise<void>;
  /** Recent events, oldest first (at most the last 1000). */
  events(): readonly StatsEvent[];
  setServerState(pool: string, server: string, state: AdminState): AdminResult;
  /** Sets the configured weight (0..256). */
  setServerWeight(pool: string, server: string, weight: number): AdminResult;
  /** Drops every affinity binding to the server: its clients' next connections are balanced anew. */
  clearServerBindings(pool: string, server: string): AdminResult;
  reload(): Promise<ReloadResult>;
  /** Called once per authorised admin request, after it ran, so the source can put it in its event log. */
  recordAdminAction(action: AdminAction): void;
}

/**
 * Totals of a pool computed from its servers, for adapters that do not count per pool themselves. `smax` is then
 * the sum of the servers' maxima, an upper bound of the pool's.
 */
export function sumServers(servers: readonly ServerStats[]): PoolTotals {
  const t: PoolTotals = { scur: 0, smax: 0, slim: 0, stot: 0, bytesIn: 0, bytesOut: 0, connectErrors: 0, retries: 0, redispatches: 0 };
  let unlimited = servers.length === 0;
  for (const s of servers) {
    t.scur += s.scur;
    t.smax += s.smax;
    t.stot += s.stot;
    t.bytesIn += s.bytesIn;
    t.bytesOut += s.bytesOut;
    t.connectErrors += s.connectErrors;
    t.retries += s.retries;
    t.redispatches += s.redispatches;
    if (s.slim === null) unlimited = true;
    else t.slim = (t.slim ?? 0) + s.slim;
  }
  if (unlimited) t.slim = null;
  return t;
}
