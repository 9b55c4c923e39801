/**
 * The `cluster:` section (SPEC 9): instances with the same `name` share admin state, source-affinity bindings and
 * the event history through Redis. Absent: the balancer runs alone and nothing of src/proxy/cluster-state loads.
 */
import { hostname } from 'node:os';
import { isMap } from 'yaml';
import type { HostPort } from '../common/address.ts';
import type { Cursor } from './cursor.ts';

export const CLUSTER_KEYS = ['name', 'instance', 'redis', 'timeout'] as const;
export const SENTINEL_KEYS = ['sentinels', 'name', 'password'] as const;

/** Redis itself (URL, password and database inside it), or a master found through Sentinel. */
export type RedisTarget =
  | { readonly kind: 'url'; readonly url: string }
  | { readonly kind: 'sentinel'; readonly sentinels: readonly HostPort[]; readonly name: string; readonly password?: string };

export interface ClusterConfig {
  readonly name: string;
  /** This instance's name among its peers (default: the host name). */
  readonly instance: string;
  readonly redis: RedisTarget;
  /** The longest forwarding waits on Redis before it decides with local state alone (ms). */
  readonly timeout: number;
}

export const CLUSTER_DEFAULT_TIMEOUT = 50;
/** Longer than this, a stalled Redis would hold a client's connect noticeably: 5 s bounds a typo like `50s`. */
const MAX_TIMEOUT = 5_000;
/** Part of every Redis key: no `:`, `{`, `}` or space, so one cluster's keys never read as another's. */
const CLUSTER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const NAME_HINT = 'use up to 64 letters, digits, "_", "-" and "." (starting with a letter or digit)';

export function readCluster(c: Cursor): ClusterConfig | null {
  if (!c.map(CLUSTER_KEYS)) return null;
  const name = c.at('name').str({ required: true, pattern: CLUSTER_NAME, hint: NAME_HINT });
  const instanceC = c.at('instance');
  const instance = instanceC.present ? instanceC.str({ pattern: CLUSTER_NAME, hint: NAME_HINT }) : defaultInstance();
  const redis = readRedis(c.at('redis'));
  const timeout = readTimeout(c.at('timeout'));
  if (name === undefined || instance === undefined || redis === undefined) return null;
  return { name, instance, redis, timeout };
}

/** The host name up to its first dot, made a valid instance name (a host name is not always one). */
function defaultInstance(): string {
  const h = hostname().split('.')[0]!.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64);
  return /^[A-Za-z0-9]/.test(h) ? h : `host${h}`;
}

function readTimeout(c: Cursor): number {
  const ms = c.duration({ min: 1 });
  if (ms === undefined) return CLUSTER_DEFAULT_TIMEOUT;
  if (ms > MAX_TIMEOUT) {
    c.error(`must be at most ${MAX_TIMEOUT / 1000}s (forwarding waits this long on Redis before deciding alone), got ${String(c.node && (c.node as { value?: unknown }).value)}`);
    return CLUSTER_DEFAULT_TIMEOUT;
  }
  return ms;
}

function readRedis(c: Cursor): RedisTarget | undefined {
  if (!c.present) {
    c.str({ required: true });
    return undefined;
  }
  if (!isMap(c.node)) {
    const v = (c.node as { value?: unknown }).value;
    if (typeof v !== 'string') return c.error('expected a redis:// URL or a mapping { sentinels: [host:port, ...], name: <master name> }'), undefined;
    const problem = redisUrlProblem(v);
    if (problem !== null) return c.error(problem), undefined;
    return { kind: 'url', url: v };
  }
  c.map(SENTINEL_KEYS);
  const sentinels: HostPort[] = [];
  const list = c.at('sentinels');
  if (!list.present) list.error('is required (the Sentinel addresses, host:port)');
  else {
    const items = list.items();
    if (items.length === 0) list.error('must list at least one Sentinel');
    for (const item of items) {
      const hp = readSentinel(item);
      if (hp !== undefined) sentinels.push(hp);
    }
  }
  const name = c.at('name').str({ required: true });
  const password = c.at('password').str();
  if (name === undefined || sentinels.length === 0) return undefined;
  return { kind: 'sentinel', sentinels, name, ...(password !== undefined ? { password } : {}) };
}

/** `host:port`, or `{ host, port }` as ioredis writes it. */
function readSentinel(c: Cursor): HostPort | undefined {
  if (!isMap(c.node)) return c.hostPort({ required: true });
  c.map(['host', 'port']);
  const host = c.at('host').str({ required: true });
  const port = c.at('port').int(1, 65535, { required: true });
  return host === undefined || port === undefined ? undefined : { host, port };
}

/** Null when `url` is a usable redis:// or rediss:// URL; else why not (never echoing a password). */
export function redisUrlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'expected a URL such as redis://127.0.0.1:6379/0 (or a mapping with sentinels)';
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') return `expected a redis:// or rediss:// URL, got scheme "${u.protocol.slice(0, 16)}"`;
  if (u.hostname === '') return 'the URL names no host (redis://host:port/db)';
  const db = u.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d{1,2}$/.test(db)) return `the database in the URL must be a number 0..99, got "${db.slice(0, 16)}"`;
  return null;
}
