/**
 * Client key -> server bindings for one pool (SPEC 2.3), bounded and expiring.
 *
 * A binding lives while its client has connections, then `ttl` after the last one closed. The Map's insertion
 * order is the recency order (a touch re-inserts), so eviction of the least recently used binding and the
 * expiry sweep both start at the front. Dropping every binding of a server that went DOWN is O(1): each binding
 * remembers the server's epoch, and a binding whose server moved on to a new epoch is stale.
 *
 * A connection holds the Binding object it acquired and releases that object, not the key: when a client is
 * rebound (its server went DOWN while an old connection stayed open), the old connection's close must not count
 * against the new binding, or the new one could expire while its connection is still open.
 */
export interface BindingTarget {
  /** Incremented whenever the server's bindings must be dropped (DOWN, MAINT, removed by reload). */
  readonly bindingEpoch: number;
}

/** One client's binding; connections hold it from acquire/bind to release. */
export interface Binding<S extends BindingTarget> {
  readonly server: S;
  readonly epoch: number;
  /** Live connections of this client in the pool; the TTL clock runs only at 0. */
  conns: number;
  /** When `conns` last fell to 0 (ms). */
  idleSince: number;
}

export interface AffinityStats {
  /** Entries in the table (stale ones not swept yet included; `countByServer` counts only live ones). */
  bindings: number;
  hits: number;
  misses: number;
  /** Dropped to stay within `maxBindings`. */
  evictions: number;
  /** Dropped because their TTL ran out or their server's epoch moved (DOWN, MAINT, removed). */
  expired: number;
}

/** Busy bindings (open connections) passed over per eviction before the oldest is evicted anyway. */
const SPARE_BUSY = 8;

export class AffinityTable<S extends BindingTarget> {
  readonly #map = new Map<string, Binding<S>>();
  #ttl: number;
  #max: number;
  readonly #now: () => number;
  /** The sweep resumes where the previous one stopped, so a budget smaller than the table still covers it all. */
  #cursor: Iterator<[string, Binding<S>]> | null = null;
  #hits = 0;
  #misses = 0;
  #evictions = 0;
  #expired = 0;

  constructor(opts: { ttl: number; maxBindings: number; now?: () => number }) {
    this.#ttl = opts.ttl;
    this.#max = opts.maxBindings;
    this.#now = opts.now ?? Date.now;
  }

  get ttl(): number {
    return this.#ttl;
  }
  get maxBindings(): number {
    return this.#max;
  }

  /** Reload: new limits apply; existing bindings stay (a lowered cap evicts the oldest). */
  configure(opts: { ttl: number; maxBindings: number }): void {
    this.#ttl = opts.ttl;
    this.#max = opts.maxBindings;
    this.#evictOverflow();
  }

  /**
   * The live binding of `key`, with one connection taken on it (hand it to `release` when that connection
   * closes), or undefined (a miss). Stale or expired bindings are removed here.
   */
  acquire(key: string): Binding<S> | undefined {
    const b = this.#map.get(key);
    if (b === undefined) {
      this.#misses++;
      return undefined;
    }
    if (b.epoch !== b.server.bindingEpoch || (b.conns === 0 && this.#now() - b.idleSince >= this.#ttl)) {
      this.#map.delete(key);
      this.#expired++;
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    b.conns++;
    this.#map.delete(key);
    this.#map.set(key, b);
    return b;
  }

  /**
   * Binds `key` to `server` with one connection taken on it; made at accept, before the server connect. Replaces
   * any previous binding of the key (connections holding that one keep it until they release it).
   */
  bind(key: string, server: S): Binding<S> {
    const b: Binding<S> = { server, epoch: server.bindingEpoch, conns: 1, idleSince: 0 };
    this.#map.delete(key);
    this.#map.set(key, b);
    this.#evictOverflow();
    return b;
  }

  /** One connection closed; the TTL starts when it was the last. A key releases its current binding. */
  release(ref: Binding<S> | string): void {
    const b = typeof ref === 'string' ? this.#map.get(ref) : ref;
    if (b === undefined || b.conns === 0) return;
    if (--b.conns === 0) b.idleSince = this.#now();
  }

  /** Whether `b` still routes: its server did not move to a new epoch. (Held bindings do not expire.) */
  isLive(b: Binding<S>): boolean {
    return b.epoch === b.server.bindingEpoch;
  }

  /** Forgets `key`'s binding; given `only`, just when that is still the key's binding. */
  unbind(key: string, only?: Binding<S>): void {
    if (only === undefined || this.#map.get(key) === only) this.#map.delete(key);
  }

  /** The bound server without taking a connection or counting a hit (for routing decisions and stats). */
  peek(key: string): S | undefined {
    const b = this.#map.get(key);
    return b && b.epoch === b.server.bindingEpoch ? b.server : undefined;
  }

  /**
   * Removes expired and stale bindings, visiting at most `budget` entries so a sweep of a million bindings never
   * blocks the event loop for long; the next sweep goes on from there. Returns how many it removed.
   */
  sweep(budget = 10_000): number {
    const now = this.#now();
    let removed = 0;
    // Wrap round at most once, so a budget larger than the table sees every entry in one call, once.
    let wrapped = this.#cursor === null;
    let it = this.#cursor ?? this.#map.entries();
    for (let seen = 0; seen < budget; ) {
      const n = it.next();
      if (n.done === true) {
        this.#cursor = null;
        if (wrapped) break;
        wrapped = true;
        it = this.#map.entries();
        continue;
      }
      seen++;
      this.#cursor = it;
      const [key, b] = n.value;
      if (b.epoch !== b.server.bindingEpoch || (b.conns === 0 && now - b.idleSince >= this.#ttl)) {
        this.#map.delete(key);
        this.#expired++;
        removed++;
      }
    }
    return removed;
  }

  /**
   * Drops every binding with no open connection whose server matches (a walk of the table: failback only, once per
   * tier change). A binding held by an open connection stays: that client keeps its server.
   */
  dropIdle(match: (server: S) => boolean): number {
    let dropped = 0;
    for (const [key, b] of this.#map) {
      if (b.conns === 0 && match(b.server)) {
        this.#map.delete(key);
        this.#expired++;
        dropped++;
      }
    }
    this.#cursor = null;
    return dropped;
  }

  /**
   * Evicts least recently used bindings over the cap. Idle ones go first: a busy binding (a license connection
   * open for hours, never touched since) is moved to the back instead, a few times per eviction, so a client
   * holding a license keeps its server; past that the oldest goes anyway, since the cap bounds memory.
   */
  #evictOverflow(): void {
    let spared = 0;
    while (this.#map.size > this.#max) {
      const [key, b] = this.#map.entries().next().value as [string, Binding<S>];
      this.#map.delete(key);
      if (b.conns > 0 && b.epoch === b.server.bindingEpoch && spared < SPARE_BUSY && this.#map.size > 0) {
        spared++;
        this.#map.set(key, b);
        continue;
      }
      this.#evictions++;
    }
  }

  get size(): number {
    return this.#map.size;
  }

  /** Every live binding as [key, server] (walks the table: a cluster's re-sync after a Redis restart only). */
  liveEntries(): Array<[string, S]> {
    const now = this.#now();
    const out: Array<[string, S]> = [];
    for (const [key, b] of this.#map) {
      if (b.epoch !== b.server.bindingEpoch || (b.conns === 0 && now - b.idleSince >= this.#ttl)) continue;
      out.push([key, b.server]);
    }
    return out;
  }

  /** Keys whose live binding has open connections (walks the table: a cluster's periodic TTL refresh only). */
  busyKeys(): string[] {
    const out: string[] = [];
    for (const [key, b] of this.#map) if (b.conns > 0 && b.epoch === b.server.bindingEpoch) out.push(key);
    return out;
  }

  /** Live bindings per server, for the stats page (walks the table: call from snapshots only). */
  countByServer(): Map<S, number> {
    const now = this.#now();
    const out = new Map<S, number>();
    for (const b of this.#map.values()) {
      if (b.epoch !== b.server.bindingEpoch || (b.conns === 0 && now - b.idleSince >= this.#ttl)) continue;
      out.set(b.server, (out.get(b.server) ?? 0) + 1);
    }
    return out;
  }

  get stats(): AffinityStats {
    return { bindings: this.#map.size, hits: this.#hits, misses: this.#misses, evictions: this.#evictions, expired: this.#expired };
  }
}
