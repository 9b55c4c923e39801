import type { FeaturePool, Holder, HolderInfo } from './feature-pool.ts';
import type { Identity } from './grant.ts';

/**
 * A replicated checkout with no client connection on this member: on a follower every session of the master is
 * one; on a new master, the sessions of the failed one until their clients RESUME them (or resume_window
 * frees them). It holds its seats and its tokens in the pools like a live grant, so every count and every status
 * includes it exactly once.
 */
export class DetachedSession implements Holder {
  readonly handle: string;
  readonly seatPool: FeaturePool;
  readonly count: number;
  readonly version: string;
  readonly identity: Identity;
  readonly start: number;
  readonly port: number;
  /** The CHECKOUT's request id (a secret: never in status or logs), null without one. */
  readonly req: string | null;
  /**
   * False for a `resume=no` checkout: its connection was to another member (or is gone) and its client never
   * RESUMEs, so a member that serves, or loses its master, frees it at once instead of waiting resume_window.
   */
  readonly resumable: boolean;
  /** Token pools it holds tokens of. */
  readonly tokenPools: FeaturePool[] = [];
  /**
   * When a serving member frees it if nobody resumes it (replicated as the record's `x`); null while its client held
   * it on the last master. Only a serving member acts on it.
   */
  expiresAt: number | null = null;
  #ended = false;

  constructor(opts: { handle: string; seatPool: FeaturePool; count: number; version: string; identity: Identity; start: number; port: number; req: string | null; resumable: boolean }) {
    this.handle = opts.handle;
    this.seatPool = opts.seatPool;
    this.count = opts.count;
    this.version = opts.version;
    this.identity = opts.identity;
    this.start = opts.start;
    this.port = opts.port;
    this.req = opts.req;
    this.resumable = opts.resumable;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Adds (n > 0) or frees (n < 0) tokens of a pool under this handle. */
  tokens(pool: FeaturePool, n: number): void {
    if (n > 0) {
      if (!this.tokenPools.includes(pool)) this.tokenPools.push(pool);
      pool.take(this, n);
    } else pool.give(this, -n);
  }

  /** Frees its seats and tokens (CHECKIN replicated, expiry, a snapshot replacing the replica). */
  end(): boolean {
    if (this.#ended) return false;
    this.#ended = true;
    this.seatPool.give(this);
    for (const p of this.tokenPools) p.give(this);
    this.tokenPools.length = 0;
    return true;
  }

  /** Marks it taken over by a live grant (its holdings were transferred, nothing is freed). */
  adopt(): void {
    this.#ended = true;
  }

  describe(): HolderInfo {
    const { user, host, display } = this.identity;
    return { user, host, display, version: this.version, handle: this.handle, port: this.port, start: this.start };
  }
}
