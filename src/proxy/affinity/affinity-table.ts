/**
 * Client key -> server bindings for one pool (SPEC 2.3), bounded and expiring.
 *
 * A binding lives while its client has connections, then `ttl` after the last one closed. The Map's insertion
 * order is the recency order (a touch re-inserts), so eviction of the least recently used binding and the
 * expiry sweep both start at the front and stop early. Dropping every binding of a server that went DOWN is O(1):
 * each binding remembers the server's epoch, and a binding whose server moved on to a new epoch is stale.
 */
export interface BindingTarget {
  /** Incremented whenever the server's bindings must be dropped (DOWN, MAINT, removed by reload). */
  readonly bindingEpoch: number;
}

interface Binding<S extends BindingTarget> {
  server: S;
  epoch: number;
  /** Live connections of this client in the pool; the TTL clock runs only at 0. */
  conns: number;
  /** When `conns` last fell to 0 (ms). */
  idleSince: number;
}

export interface AffinityStats {
  bindings: number;
  hits: number;
  misses: number;
  evictions: number;
  expired: number;
}

export class AffinityTable<S extends BindingTarget> {
  readonly #map = new Map<string, Binding<S>>();
  #ttl: number;
  #max: number;
  readonly #now: () => number;
  #hits = 0;
  #misses = 0;
  #evictions = 0;
  #expired = 0;

  constructor(opts: { ttl: number; maxBindings: number; now?: () => number }) {
    this.#ttl = opts.ttl;
    this.#max = opts.maxBindings;
    this.#now = opts.now ?? Date.now;
  }

  /** Reload: new limits apply; existing bindings stay (a lowered cap evicts the oldest). */
  configure(opts: { ttl: number; maxBindings: number }): void {
    this.#ttl = opts.ttl;
    this.#max = opts.maxBindings;
    this.#evictOverflow();
  }

  /**
   * The server `key` is bound to, if the binding is live, and takes one connection on it (call `release` when
   * that connection closes). Stale or expired bindings are removed here and count as a miss.
   */
  acquire(key: string): S | undefined {
    const b = this.#map.get(key);
    if (b === undefined) {
      this.#misses++;
      return undefined;
    }
    if (b.epoch !== b.server.bindingEpoch || (b.conns === 0 && this.#now() - b.idleSince >= this.#ttl)) {
      this.#map.delete(key);
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    b.conns++;
    this.#map.delete(key);
    this.#map.set(key, b);
    return b.server;
  }

  /** Binds `key` to `server` and takes one connection on it; made at accept, before the server connect. */
  bind(key: string, server: S): void {
    const old = this.#map.get(key);
    if (old) this.#map.delete(key);
    this.#map.set(key, { server, epoch: server.bindingEpoch, conns: (old?.conns ?? 0) + 1, idleSince: 0 });
    this.#evictOverflow();
  }

  /** One connection of `key` closed; the TTL starts when it was the last. */
  release(key: string): void {
    const b = this.#map.get(key);
    if (b === undefined || b.conns === 0) return;
    if (--b.conns === 0) b.idleSince = this.#now();
  }

  /** Forgets one client's binding (e.g. its bound server refused it and affinity must yield). */
  unbind(key: string): void {
    this.#map.delete(key);
  }

  /** The bound server without taking a connection or counting a hit (for routing decisions and stats). */
  peek(key: string): S | undefined {
    const b = this.#map.get(key);
    return b && b.epoch === b.server.bindingEpoch ? b.server : undefined;
  }

  /**
   * Removes expired and stale bindings, oldest first, visiting at most `budget` entries so a sweep of a million
   * bindings never blocks the event loop for long. Returns how many it removed.
   */
  sweep(budget = 10_000): number {
    const now = this.#now();
    let removed = 0;
    let seen = 0;
    for (const [key, b] of this.#map) {
      if (++seen > budget) break;
      const stale = b.epoch !== b.server.bindingEpoch;
      if (stale || (b.conns === 0 && now - b.idleSince >= this.#ttl)) {
        this.#map.delete(key);
        this.#expired++;
        removed++;
      }
    }
    return removed;
  }

  #evictOverflow(): void {
    while (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next().value as string;
      this.#map.delete(oldest);
      this.#evictions++;
    }
  }

  get size(): number {
    return this.#map.size;
  }

  /** Live bindings per server, for the stats page (walks the table: call from snapshots only). */
  countByServer(): Map<S, number> {
    const out = new Map<S, number>();
    for (const b of this.#map.values()) {
      if (b.epoch === b.server.bindingEpoch) out.set(b.server, (out.get(b.server) ?? 0) + 1);
    }
    return out;
  }

  get stats(): AffinityStats {
    return { bindings: this.#map.size, hits: this.#hits, misses: this.#misses, evictions: this.#evictions, expired: this.#expired };
  }
}
