/**
 * The validated, frozen shape of licproxy.yaml (SPEC section 2). Durations are milliseconds. Every default is in
 * DEFAULTS below, the one table the schema, the docs and `licproxy check` read.
 */
import type { HostPort } from '../common/address.ts';

export type BalanceAlgorithm = 'roundrobin' | 'leastconn' | 'source' | 'first';
export type PoolMode = 'balance' | 'failover' | 'master';
export type CheckType = 'none' | 'tcp' | 'send_expect' | 'lmstat' | 'external';
export type AdminState = 'ready' | 'drain' | 'maint';
export type AffinityBy = 'source' | 'handle' | 'none';

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
}

export interface StatsConfig {
  listen: HostPort;
  refresh: number;
  /**
   * Absent: the admin endpoints answer 404. `insecure`: the operator accepts the bearer token crossing the
   * network in clear text (stats listen on a non-loopback address over plain HTTP).
   */
  admin: { tokenFile: string; insecure: boolean } | null;
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
}

/** Every default of the file, in one place (SPEC 2). */
export const DEFAULTS = {
  global: { logLevel: 'info', maxConnections: 50_000, grace: 30_000, workers: 1, workerAccept: 'round_robin' },
  stats: { listen: { host: '127.0.0.1', port: 8404 }, refresh: 5_000 },
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
    failback: { delay: 0, slowstart: 0 },
  },
  server: { weight: 1, tier: 0, state: 'ready', maintKill: false, maxConnections: 0 },
  frontend: { maxConnections: 0, sendProxy: null, allow: null },
} as const;
