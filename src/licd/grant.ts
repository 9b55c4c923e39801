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

/** One checkout: `count` seats of a feature under a handle, held while its license connection lives. */
export class Grant implements Holder {
  readonly handle: string;
  readonly pool: FeaturePool;
  readonly count: number;
  readonly version: string;
  readonly identity: Identity;
  /** License port it was granted on (the `server/port` of status lines). */
  readonly port: number;
  readonly start = Date.now();
  /** The license session that holds it; token connections refresh its activity. */
  readonly owner: { touch(): void };
  #tokens: Set<TokenHolder> | null = null;
  #ended = false;

  constructor(opts: {
    handle: string;
    pool: FeaturePool;
    count: number;
    version: string;
    identity: Identity;
    port: number;
    owner: { touch(): void };
  }) {
    this.handle = opts.handle;
    this.pool = opts.pool;
    this.count = opts.count;
    this.version = opts.version;
    this.identity = opts.identity;
    this.port = opts.port;
    this.owner = opts.owner;
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
    if (this.#tokens) {
      const tokens = [...this.#tokens];
      this.#tokens = null;
      for (const t of tokens) t.end(reason);
    }
    return true;
  }

  describe(): HolderInfo {
    const { user, host, display } = this.identity;
    return { user, host, display, version: this.version, handle: this.handle, port: this.port, start: this.start };
  }
}
