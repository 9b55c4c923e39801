/**
 * What the bench runs its load through. A target is started fresh for every measurement (so one workload's
 * heap growth or leftover connections never colour the next) and measured as the process tree under `pid`.
 */
import { treeCpuSeconds, treeCpuSplit, treeRssKb } from '../proc.ts';

export interface Upstream {
  host: string;
  port: number;
}

export interface StartContext {
  /** The run's temp dir: generated configs and logs go below it. */
  dir: string;
  /** Backend servers the target balances over (roundrobin). */
  upstreams: readonly Upstream[];
  /** The most client connections the workload will hold at once (sizes HAProxy/NGINX connection limits). */
  maxConnections: number;
  /** Extra node options for Node targets (licproxy, naive), e.g. `--cpu-prof` from bench/profile.ts. */
  nodeArgs?: readonly string[];
}

export interface RunningTarget {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** Root pid of the proxy; null for `direct` (no proxy in the path). */
  readonly pid: number | null;
  /** Non-null once the proxy has died: the reason, with its log tail. */
  failure(): string | null;
  stop(): Promise<void>;
}

/** Common to every entry of the targets table. */
export interface TargetSpecBase {
  /** Column name in the report; unique. */
  name: string;
  /** One line for the report's legend. */
  description: string;
}

export interface DirectSpec extends TargetSpecBase {
  kind: 'direct';
}

export interface LicproxySpec extends TargetSpecBase {
  kind: 'licproxy';
  /** Health check of the pool: `none` keeps checks out of the measurement. */
  check?: 'none' | 'tcp';
  /** Extra keys merged into the generated pool (e.g. `{ affinity: { by: 'source' } }`). */
  pool?: Record<string, unknown>;
  /** Extra keys merged into `global`. */
  global?: Record<string, unknown>;
  /** Requests per second to /stats.json while the load runs (0 = stats listener off). */
  hammerStats?: number;
  /** The path hammered (default /stats.json). */
  hammerPath?: string;
  /** Node options for this target's process only (e.g. `--max-semi-space-size=16`, an A/B of a V8 setting). */
  nodeArgs?: string[];
  /**
   * Another copy of the repository to run licproxy from (A/B of a change: the same bench, both trees
   * alternated). Read when the target starts.
   */
  repo?: () => string | undefined;
}

export interface HaproxySpec extends TargetSpecBase {
  kind: 'haproxy';
  /** `nbthread`; undefined = HAProxy's default (one thread per core). */
  nbthread?: number;
  /** `check` on the server lines. */
  check?: boolean;
}

export interface NginxSpec extends TargetSpecBase {
  kind: 'nginx';
  workers?: number;
}

export interface NaiveSpec extends TargetSpecBase {
  kind: 'naive';
  /** Another Node proxy script run the same way (`<script> <port> <host:port>...`); default bench/naive-proxy.ts. */
  script?: string;
}

export type TargetSpec = DirectSpec | LicproxySpec | HaproxySpec | NginxSpec | NaiveSpec;

/** Proxy CPU seconds so far (0 for direct). */
export function proxyCpu(t: RunningTarget): number {
  return t.pid === null ? 0 : treeCpuSeconds(t.pid);
}

/** Proxy CPU seconds so far, in all and in user space alone (0 for direct). */
export function proxyCpuSplit(t: RunningTarget): { total: number; user: number } {
  return t.pid === null ? { total: 0, user: 0 } : treeCpuSplit(t.pid);
}

/** Proxy RSS in KiB (0 for direct). */
export function proxyRssKb(t: RunningTarget): number {
  return t.pid === null ? 0 : treeRssKb(t.pid);
}
