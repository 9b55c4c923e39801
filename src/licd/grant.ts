import type { FeaturePool, Holder, HolderInfo } from './feature-pool.ts';

/** Who a license session says it is (HELLO), shown in status and logs. */
export interface Identity {
  user: string;
  host: string;
  display: string;
}

/** The token connections drawing under a grant; ended with it. */
export interface TokenHolder {
  end(reason: string): void;
}

/**
 * Tokens a handle held when its session was detached by a failover (PROTOCOL.md "RESUME"): kept for the handle,
 * counted once, and handed to the token connections that re-issue `TOKENS <handle> <n>` before anything new is
 * drawn. What is never reclaimed is freed when the grant ends.
 */
export class TokenReservation implements Holder {
  readonly #grant: Grant;
  readonly pools: FeaturePool[] = [];

  constructor(grant: Grant) {
    this.#grant = grant;
  }

  describe(): HolderInfo {
    return this.#grant.describe();
  }

  release(): void {
    for (const p of this.pools) p.give(this);
    this.pools.length = 0;
  }
}

/** One checkout: `count` seats of a feature under a handle, held while its license connection lives. */
export class Grant implements Holder {
  readonly handle: string;
  readonly pool: FeaturePool;
  readonly count: number;
  readonly version: string;
  readonly identity: Identity;
  /** License port it was granted on (the `server/port` of status lines). */
  readonly port: number;
  readonly start: number;
  /**
   * The CHECKOUT's request id (`req=`), null without one: a secret like the handle (never in status or logs), kept so
   * a replayed CHECKOUT re-attaches this session once it is detached (PROTOCOL.md "CHECKOUT").
   */
  readonly req: string | null;
  /**
   * False when the CHECKOUT said `resume=no` (PROTOCOL.md "CHECKOUT"): its client never RESUMEs, so nothing keeps
   * the seat once its connection is gone (no resume_window, no hold_on_disconnect).
   */
  readonly resumable: boolean;
  /** The license session that holds it; token connections refresh its activity. */
  readonly owner: { touch(): void };
  #tokens: Set<TokenHolder> | null = null;
  #ended = false;
  /** Tokens carried over from before a failover, for `TOKENS` to reclaim; null when there are none. */
  reservation: TokenReservation | null = null;

  constructor(opts: {
    handle: string;
    pool: FeaturePool;
    count: number;
    version: string;
    identity: Identity;
    port: number;
    owner: { touch(): void };
    start?: number;
    req?: string | null;
    resumable?: boolean;
  }) {
    this.handle = opts.handle;
    this.pool = opts.pool;
    this.count = opts.count;
    this.version = opts.version;
    this.identity = opts.identity;
    this.port = opts.port;
    this.owner = opts.owner;
    this.start = opts.start ?? Date.now();
    this.req = opts.req ?? null;
    this.resumable = opts.resumable ?? true;
  }

  get ended(): boolean {
    return this.#ended;
  }

  addTokens(t: TokenHolder): void {
    (this.#tokens ??= new Set()).add(t);
  }

  removeTokens(t: TokenHolder): void {
    this.#tokens?.delete(t);
  }

  get tokenConnections(): number {
    return this.#tokens?.size ?? 0;
  }

  /** Frees the seats (serving the queue) and ends its token connections; a second call does nothing. */
  end(reason: string): boolean {
    if (this.#ended) return false;
    this.#ended = true;
    this.pool.give(this);
    this.reservation?.release();
    this.reservation = null;
    if (this.#tokens) {
      const tokens = [...this.#tokens];
      this.#tokens = null;
      for (const t of tokens) t.end(reason);
    }
    return true;
  }

  /**
   * Ends the grant here without freeing anything: its seats and tokens have been moved to a detached replica
   * (this member stopped serving, or another connection resumed the handle). Closes its token connections.
   */
  abandon(reason: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.reservation = null;
    if (this.#tokens) {
      const tokens = [...this.#tokens];
      this.#tokens = null;
      for (const t of tokens) t.end(reason);
    }
  }

  /** Token connections drawing under it (for moving their tokens when the grant is detached). */
  tokenHolders(): TokenHolder[] {
    return this.#tokens ? [...this.#tokens] : [];
  }

  describe(): HolderInfo {
    const { user, host, display } = this.identity;
    return { user, host, display, version: this.version, handle: this.handle, port: this.port, start: this.start };
  }
}
