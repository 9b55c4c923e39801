/**
 * The connections of one instance to the cluster's Redis (SPEC 9): one for commands, one subscribed to the
 * cluster's notify channel. Commands never queue while Redis is away (`enableOfflineQueue: false`): a caller gets
 * an error at once and decides with local state, so nothing piles up behind a dead Redis. The state (up / down)
 * is logged once per change, never per failed command; failed commands are counted for
 * `licproxy_cluster_redis_errors_total`.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { errorMessage } from '../../common/errors.ts';
import { printable } from '../../common/printable.ts';
import type { Logger } from '../../common/logger.ts';
import type { ClusterConfig } from '../../config/cluster-config.ts';

/** Reconnect pauses grow to this: a returning Redis is found within 1 s. */
const MAX_RECONNECT_MS = 1_000;
const CONNECT_TIMEOUT_MS = 2_000;

export type LinkState = 'connecting' | 'up' | 'down';

export interface LinkStatus {
  state: LinkState;
  /** Date.now() of the last change of state. */
  since: number;
  /** The last connection error, one printable line (null: none since the last connect). */
  lastError: string | null;
  errors: number;
}

export class RedisLink {
  readonly cmd: Redis;
  readonly sub: Redis;
  readonly #log: Logger;
  readonly #where: string;
  #state: LinkState = 'connecting';
  #since = Date.now();
  #lastError: string | null = null;
  #errors = 0;
  #onUp: Array<() => void> = [];
  #closed = false;

  constructor(config: ClusterConfig, log: Logger) {
    this.#log = log;
    const common: RedisOptions = {
      connectTimeout: CONNECT_TIMEOUT_MS,
      maxRetriesPerRequest: 0,
      retryStrategy: (n: number) => Math.min(50 * n, MAX_RECONNECT_MS),
      // Redis's replies name keys and values of this cluster only; a stray error reply must not drop the link.
      reconnectOnError: () => false,
    };
    const r = config.redis;
    if (r.kind === 'url') {
      this.#where = redactUrl(r.url);
      this.cmd = new Redis(r.url, { ...common, enableOfflineQueue: false });
    } else {
      this.#where = `sentinel ${r.name} via ${r.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}`;
      this.cmd = new Redis({ ...common, enableOfflineQueue: false, sentinels: r.sentinels.map((s) => ({ host: s.host, port: s.port })), name: r.name, ...(r.password !== undefined ? { password: r.password } : {}) });
    }
    // The subscriber may queue its SUBSCRIBE until connected; it resubscribes by itself after a reconnect.
    this.sub = this.cmd.duplicate({ enableOfflineQueue: true });
    this.cmd.on('ready', () => this.#up());
    this.cmd.on('error', (err: Error) => this.#failed(err));
    this.cmd.on('close', () => this.#down(null));
    this.cmd.on('end', () => this.#down(null));
    this.sub.on('error', () => {}); // reported through `cmd`, which shares its fate
  }

  get state(): LinkState {
    return this.#state;
  }

  get isUp(): boolean {
    return this.#state === 'up' && this.cmd.status === 'ready';
  }

  get where(): string {
    return this.#where;
  }

  status(): LinkStatus {
    return { state: this.#state, since: this.#since, lastError: this.#lastError, errors: this.#errors };
  }

  /** A command failed or timed out: counted, not logged (the state change is). */
  countError(): void {
    this.#errors++;
  }

  /** Called every time the link comes (back) up: re-read shared state, write back what was decided alone. */
  onUp(f: () => void): void {
    this.#onUp.push(f);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.cmd.disconnect();
    this.sub.disconnect();
  }

  #up(): void {
    if (this.#closed) return;
    const was = this.#state;
    this.#state = 'up';
    this.#since = Date.now();
    this.#lastError = null;
    if (was === 'down') this.#log.warn({ redis: this.#where }, `cluster: Redis ${this.#where} is back: re-syncing shared state`);
    else this.#log.info({ redis: this.#where }, `cluster: connected to Redis ${this.#where}`);
    for (const f of this.#onUp) f();
  }

  #failed(err: Error): void {
    if (this.#closed) return;
    this.#lastError = printable(oneLine(errorMessage(err))).slice(0, 200);
    this.#down(this.#lastError);
  }

  #down(why: string | null): void {
    if (this.#closed || this.#state === 'down') return;
    if (this.#state === 'connecting' && why === null) return; // wait for the error that says why
    this.#state = 'down';
    this.#since = Date.now();
    this.#log.error(
      { redis: this.#where, error: why ?? this.#lastError },
      `cluster: Redis ${this.#where} unreachable (${why ?? this.#lastError ?? 'connection closed'}): going on with local state`,
    );
  }
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/** The URL as logs may show it: no password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return 'redis';
  }
}
