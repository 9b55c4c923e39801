/**
 * A pool's FIFO queue (SPEC 2.5): clients that find every candidate server full wait here up to `timeouts.queue`,
 * and are placed in arrival order as slots free up. The pool owns the counters (they are part of its snapshot).
 */
import type { SelectContext, SelectResult } from './contracts.ts';
import { Server } from './server.ts';

/** A client waiting in the pool's queue. */
export interface Waiter extends SelectContext {
  /** Owned by the pool while the client waits. */
  queueTimer: NodeJS.Timeout | null;
  /** A slot is free on `server`: the waiter must attach to it synchronously (before the next waiter is placed). */
  dispatch(server: Server): void;
  /** Waited `timeouts.queue` in vain; already removed from the queue. */
  queueTimedOut(): void;
  /** Waited for the pool's first check results, which found no server; already removed from the queue. */
  queueRefused(): void;
}

/** What the queue needs of its pool: placing a waiter, and the owner of the timeout (`Pool.queueTimedOut`). */
export interface QueueOwner {
  select(ctx: SelectContext): SelectResult;
  queueTimedOut(w: Waiter): void;
}

/** The pool counters the queue keeps. */
export interface QueueCounters {
  queueCur: number;
  queueMax: number;
  queueTimeouts: number;
}

export class PoolQueue {
  readonly #owner: QueueOwner;
  readonly #counters: QueueCounters;
  readonly #queue: Waiter[] = [];

  constructor(owner: QueueOwner, counters: QueueCounters) {
    this.#owner = owner;
    this.#counters = counters;
  }

  get length(): number {
    return this.#queue.length;
  }

  enqueue(w: Waiter, timeoutMs: number): void {
    this.#queue.push(w);
    const c = this.#counters;
    c.queueCur = this.#queue.length;
    if (c.queueCur > c.queueMax) c.queueMax = c.queueCur;
    w.queueTimer = setTimeout(onQueueTimeout, timeoutMs, this.#owner, w);
  }

  /** Removes a waiter that went away (client closed, shutdown); false when it was not queued. */
  cancel(w: Waiter): boolean {
    const i = this.#queue.indexOf(w);
    if (i < 0) return false;
    this.#queue.splice(i, 1);
    this.#counters.queueCur = this.#queue.length;
    if (w.queueTimer) clearTimeout(w.queueTimer);
    w.queueTimer = null;
    return true;
  }

  timedOut(w: Waiter): void {
    w.queueTimer = null;
    const i = this.#queue.indexOf(w);
    if (i < 0) return;
    this.#queue.splice(i, 1);
    this.#counters.queueCur = this.#queue.length;
    this.#counters.queueTimeouts++;
    w.queueTimedOut();
  }

  /** Places waiters in order while the pool finds them a server. */
  drain(): void {
    const q = this.#queue;
    while (q.length > 0) {
      const w = q[0]!;
      const r = this.#owner.select(w);
      if (!(r instanceof Server)) return;
      q.shift();
      this.#counters.queueCur = q.length;
      if (w.queueTimer) clearTimeout(w.queueTimer);
      w.queueTimer = null;
      w.dispatch(r);
    }
  }

  /** Every waiter leaves the queue, refused (`queueRefused`), in arrival order. */
  refuseAll(): void {
    const all = this.#queue.splice(0);
    this.#counters.queueCur = 0;
    for (const w of all) {
      if (w.queueTimer) clearTimeout(w.queueTimer);
      w.queueTimer = null;
      w.queueRefused();
    }
  }

  /** Pool stopped: no waiter's timer fires any more. */
  clearTimers(): void {
    for (const w of this.#queue) if (w.queueTimer) clearTimeout(w.queueTimer);
  }
}

function onQueueTimeout(owner: QueueOwner, w: Waiter): void {
  owner.queueTimedOut(w);
}
