import type { LicdFeatureConfig } from '../config/licd-config.ts';
import type { DenyReason } from './protocol.ts';

/** Something holding seats or tokens of a pool: a checkout (grant) or a token connection's draw. */
export interface Holder {
  /** For status lines; called only when status is built. */
  describe(): HolderInfo;
}

export interface HolderInfo {
  user: string;
  host: string;
  display: string;
  version: string;
  handle: string;
  /** The daemon port the holder came through (license or tokens). */
  port: number;
  start: number;
}

/** A CHECKOUT ... queue=1 waiting for seats. */
export interface Waiter extends Holder {
  /** Set-wide id, for replicating the queue to peers. */
  readonly id?: string;
  readonly count: number;
  /** Seats are free for it: it is already off the queue; it takes them with `pool.take`. */
  grantQueued(pool: FeaturePool): void;
  /** It can never be served (a reload lowered the count below what it asked for). */
  deny(pool: FeaturePool, reason: DenyReason): void;
}

/**
 * One feature's seats or tokens: who holds how many, and the FIFO queue of waiters. Every change of `inUse` goes
 * through `take` / `give`, keyed by holder, so a holder's licenses are freed exactly once whatever ends it.
 */
export class FeaturePool {
  #config: LicdFeatureConfig;
  #inUse = 0;
  readonly #held = new Map<Holder, number>();
  readonly #queue: Waiter[] = [];
  /** Removed from the license file by a reload: holders keep what they have, nobody gets more. */
  retired = false;

  constructor(config: LicdFeatureConfig) {
    this.#config = config;
  }

  get config(): LicdFeatureConfig {
    return this.#config;
  }

  get name(): string {
    return this.#config.name;
  }

  get count(): number {
    return this.#config.count;
  }

  get inUse(): number {
    return this.#inUse;
  }

  get queueLength(): number {
    return this.#queue.length;
  }

  /** Free now; 0 while held above a lowered count. */
  get free(): number {
    return this.#config.count > this.#inUse ? this.#config.count - this.#inUse : 0;
  }

  /** What a newcomer could get now: nothing while others queue (strict FIFO). */
  get available(): number {
    return this.#queue.length > 0 ? 0 : this.free;
  }

  expired(now: number): boolean {
    const at = this.#config.expiresAt;
    return at !== null && now >= at;
  }

  /** Whether `n` can be granted to a newcomer now (the queue is served first). */
  canGrant(n: number): boolean {
    return this.#queue.length === 0 && !this.retired && this.#inUse + n <= this.#config.count;
  }

  take(holder: Holder, n: number): void {
    this.#held.set(holder, (this.#held.get(holder) ?? 0) + n);
    this.#inUse += n;
  }

  /** Frees `n` (default: all) of what `holder` holds; returns how many were freed. Serves the queue. */
  give(holder: Holder, n?: number): number {
    const has = this.#held.get(holder);
    if (has === undefined) return 0;
    const freed = n === undefined || n >= has ? has : n;
    if (freed === has) this.#held.delete(holder);
    else this.#held.set(holder, has - freed);
    this.#inUse -= freed;
    this.#serve();
    return freed;
  }

  /**
   * Moves `n` (default: all) of what `from` holds to `to` without freeing anything in between: the queue is not
   * served, so a seat changing hands (a session detached by a failover, then resumed) is never granted twice.
   */
  transfer(from: Holder, to: Holder, n?: number): number {
    const has = this.#held.get(from);
    if (has === undefined) return 0;
    const moved = n === undefined || n >= has ? has : n;
    if (moved === has) this.#held.delete(from);
    else this.#held.set(from, has - moved);
    this.#held.set(to, (this.#held.get(to) ?? 0) + moved);
    return moved;
  }

  heldBy(holder: Holder): number {
    return this.#held.get(holder) ?? 0;
  }

  /** Queues a waiter; returns its 1-based position. */
  enqueue(w: Waiter): number {
    return this.#queue.push(w);
  }

  /** Takes a waiter off the queue (its connection ended). */
  dequeue(w: Waiter): void {
    const i = this.#queue.indexOf(w);
    if (i === -1) return;
    this.#queue.splice(i, 1);
    // A large request leaving the head may unblock smaller ones behind it.
    if (i === 0) this.#serve();
  }

  /** Applies a reloaded feature definition; seats held above a lowered count are kept. */
  update(config: LicdFeatureConfig): void {
    this.#config = config;
    this.retired = false;
    for (const w of [...this.#queue]) {
      if (w.count > config.count) {
        this.#queue.splice(this.#queue.indexOf(w), 1);
        w.deny(this, 'COUNT');
      }
    }
    this.#serve();
  }

  /** Removed from the license file: holders keep their seats; waiters are told it can never be served. */
  retire(): void {
    this.retired = true;
    for (const w of this.#queue.splice(0)) w.deny(this, 'COUNT');
  }

  /** Grants to the head of the queue while seats allow, strictly in order: a later small request never jumps ahead. */
  #serve(): void {
    while (this.#queue.length > 0 && !this.retired) {
      const head = this.#queue[0]!;
      if (this.#inUse + head.count > this.#config.count || this.expired(Date.now())) return;
      this.#queue.shift();
      head.grantQueued(this);
    }
  }

  /** Holders and what they hold, for status (off the hot path). */
  holders(): Array<[Holder, number]> {
    return [...this.#held];
  }

  waiters(): readonly Waiter[] {
    return this.#queue;
  }
}
