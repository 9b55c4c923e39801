/**
 * The validated, frozen shape of licproxy.yaml (SPEC section 2). Durations are milliseconds. Every default is in
 * DEFAULTS below, the one table the schema, the docs and `licproxy check` read.
 */
import type { ClusterConfig } from './cluster-config.ts';
import type { HostPort } from '../common/address.ts';
import type { ConfigIssue } from '../common/errors.ts';

export type BalanceAlgorithm = 'roundrobin' | 'leastconn' | 'source' | 'first' | 'seats';
export type PoolMode = 'balance' | 'failover' | 'master';
export type CheckType = 'none' | 'tcp' | 'send_expect' | 'lmstat' | 'external';
export type AdminState = 'ready' | 'drain' | 'maint';
export type AffinityBy = 'source' | 'handle' | 'none';
/** What the proxy understands of the bytes it forwards (SPEC 8.2): nothing, or the licd line protocol. */
export type PoolProtocol = 'tcp' | 'licd';
/** `feature`: a licd connection goes to a server that serves the feature of its first CHECKOUT (SPEC 8.2). */
export type PoolRoute = 'none' | 'feature';

export interface GlobalConfig {
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  maxConnections: number;
  grace: number;
  /**
   * Processes that accept and forward connections. 1: the balancer is one process. N > 1: a primary process runs
   * the configuration, health checks, affinity table and stats, and N worker processes (node:cluster) forward.
   */
  workers: number;
  /**
   * With workers: `round_robin`, the primary accepts and hands each connection to the next worker (an even spread,
   * which the per-process descriptor limit needs); `shared`, every worker accepts from the listening socket itself
   * (no hand-off per connection; the kernel decides the spread).
   */
  workerAccept: 'round_robin' | 'shared';
  /**
   * With workers: how long a worker whose primary died (SIGKILL, crash: its IPC channel closed) goes on forwarding
   * the connections it holds, having stopped accepting, before it closes what is left and exits.
   */
  orphanGrace: number;
}

export interface StatsConfig {
  listen: HostPort;
  refresh: number;
  /**
   * Absent: the admin endpoints answer 404. `insecure`: the operator accepts the bearer token crossing the
   * network in clear text (stats listen on a non-loopback address over plain HTTP).
   */
  admin: { tokenFile: string; insecure: boolean } | null;
  /** `stats.history` (SPEC 10): hourly usage records kept in `dir` for `keep` ms; null = not kept. */
  history?: { dir: string; keep: number } | null;
  /** `stats.events`: the event log kept on disk (absent: in memory only, lost at restart). */
  events?: EventFileConfig | null;
}

/** `stats.events: { file, keep }`: /api/events persisted as JSON lines, compacted to the last `keep`. */
export interface EventFileConfig {
  /** Absolute (a relative path is resolved against the configuration file's folder). */
  file: string;
  keep: number;
}

/** What an alert can be sent for (SPEC 10). */
export type AlertEventName = 'down' | 'up' | 'failover' | 'failback' | 'pool_unavailable' | 'reload_failed' | 'feature_above';
export type AlertFormat = 'slack' | 'teams' | 'json';

/** One entry of `alerts:` (SPEC 10): a webhook and the events it is POSTed. */
export interface AlertConfig {
  /** Label of the alert in metrics and logs (default: the URL's host); the URL itself may hold a secret. */
  name: string;
  url: string;
  format: AlertFormat;
  events: readonly AlertEventName[];
  /** `feature_above: 90%` as a share (0.9): in use / issued at or above it (from lmstat checks) raises the event. */
  featureAbove: number;
  /** Per (event, pool, server): messages closer together are folded into the next one. */
  minInterval: number;
  /** Per attempt. */
  timeout: number;
  /** Attempts after the first, with exponential backoff. */
  retries: number;
  headers: Readonly<Record<string, string>>;
}

export interface TimeoutsConfig {
  connect: number;
  idle: number;
  queue: number;
  /**
   * After the server closed its side (its FIN passed on to the client): no byte either way for this long closes
   * the client side too (HAProxy's `timeout client-fin`), so a silent client is not counted as current forever.
   */
  clientFin: number;
}

export interface CheckConfig {
  type: CheckType;
  interval: number;
  fastInterval: number;
  downInterval: number;
  timeout: number;
  rise: number;
  fall: number;
  onDown: 'keep' | 'close';
  /** Named port the check talks to; resolved to the pool's first port when not written. */
  port: string;
  /** Every one of these named ports must accept for the check to pass (empty: only `port`). */
  ports: readonly string[];
  /** send_expect */
  send: string | null;
  expect: string | null;
  /** lmstat / external */
  requireFeatures: readonly string[];
  /** external: argv, placeholders {host} {port} {port:NAME}; no shell. */
  command: readonly string[] | null;
  observe: 'none' | 'response';
}

export interface AffinityConfig {
  by: AffinityBy;
  ttl: number;
  maxBindings: number;
}

export interface FailbackConfig {
  delay: number;
  slowstart: number;
  /**
   * Across tiers (SPEC 8.1): shares (0..1) of new clients sent back to a recovered tier, one per `stepInterval`;
   * empty = all at once (HAProxy's behaviour).
   */
  steps: readonly number[];
  stepInterval: number;
}

/** SPEC 8.1: a tier whose usage of the pool's feature is above `above` (0..1) spills new clients to the next tier. */
export interface OverflowConfig {
  above: number;
}

/** SPEC 8.1: how long a tier must stay unusable before new clients move to the next one (they queue meanwhile). */
export interface FailoverConfig {
  delay: number;
}

export interface ServerConfig {
  name: string;
  host: string;
  /** Every named port of the pool, with this server's overrides applied. */
  ports: Readonly<Record<string, number>>;
  weight: number;
  tier: number;
  state: AdminState;
  maintKill: boolean;
  /** 0 = no per-server limit. */
  maxConnections: number;
  /** SPEC 8: feature names this server serves (optional; its lmstat / external checks tell too). */
  features: readonly string[];
}

export interface PoolConfig {
  name: string;
  mode: PoolMode;
  balance: BalanceAlgorithm;
  retries: number;
  redispatch: boolean;
  timeouts: TimeoutsConfig;
  /** 0 = keep-alive probes off. */
  tcpKeepalive: number;
  /** Named ports, in declaration order; a pool of `address:` servers has the one port `main`. */
  ports: Readonly<Record<string, number>>;
  affinity: AffinityConfig;
  check: CheckConfig;
  failback: FailbackConfig;
  /** `licd` when written, or implied by `route: feature` / `retry_denied: true`. */
  protocol: PoolProtocol;
  route: PoolRoute;
  /** licd: a first CHECKOUT denied EXHAUSTED is replayed on another server with a free seat (SPEC 8.2). */
  retryDenied: boolean;
  /** SPEC 8: the feature this pool's clients ask for (`balance: seats`, overflow); null = none named. */
  feature: string | null;
  overflow: OverflowConfig | null;
  failover: FailoverConfig;
  servers: readonly ServerConfig[];
}

export interface FrontendConfig {
  name: string;
  listen: HostPort;
  pool: string;
  /** Named port of the chosen server this frontend forwards to. */
  port: string;
  /** null = every client allowed. */
  allow: readonly string[] | null;
  /** 0 = only the global limit. */
  maxConnections: number;
  sendProxy: 'v1' | 'v2' | null;
}

export interface ProxyConfig {
  /** The file it was read from, for reloads and messages. */
  file: string;
  global: GlobalConfig;
  stats: StatsConfig | null;
  pools: readonly PoolConfig[];
  frontends: readonly FrontendConfig[];
  /** licd config files this process runs itself (paths resolved against the config file's folder). */
  daemons: readonly string[];
  /** SPEC 10 `alerts:` (empty: none). Optional so configurations built in code need not name it. */
  alerts?: readonly AlertConfig[];
  /** Instances sharing state through Redis (SPEC 9); absent: this balancer runs alone. */
  cluster?: ClusterConfig;
  /** Problems that do not stop the file from running (a pool `feature` no server is known to serve). */
  warnings?: readonly ConfigIssue[];
}

/** Every default of the file, in one place (SPEC 2). */
export const DEFAULTS = {
  global: { logLevel: 'info', maxConnections: 50_000, grace: 30_000, workers: 1, workerAccept: 'round_robin', orphanGrace: 86_400_000 },
  stats: { listen: { host: '127.0.0.1', port: 8404 }, refresh: 5_000 },
  /** `stats.history.keep`: 90 days of hourly usage records. */
  historyKeep: 90 * 86_400_000,
  pool: {
    mode: 'balance',
    balance: 'roundrobin',
    retries: 3,
    redispatch: true,
    timeouts: { connect: 3_000, idle: 1_800_000, queue: 10_000, clientFin: 30_000 },
    tcpKeepalive: 60_000,
    affinity: { by: 'none', ttl: 3_600_000, maxBindings: 1_000_000 },
    check: {
      type: 'tcp',
      interval: 1_000,
      fastInterval: 250,
      downInterval: 5_000,
      timeout: 500,
      rise: 2,
      fall: 3,
      onDown: 'keep',
      send: null,
      expect: null,
      requireFeatures: [],
      command: null,
      observe: 'none',
    },
    protocol: 'tcp',
    route: 'none',
    retryDenied: false,
    failback: { delay: 0, slowstart: 0, steps: [], stepInterval: 60_000 },
    feature: null,
    overflow: null,
    failover: { delay: 0 },
  },
  server: { weight: 1, tier: 0, state: 'ready', maintKill: false, maxConnections: 0, features: [] },
  frontend: { maxConnections: 0, sendProxy: null, allow: null },
} as const;
