/**
 * The one hook a balancing algorithm implements: "which server next?". The pool owns tiers, modes, queueing and
 * failback; it hands an algorithm the usable servers of the chosen tier (declaration order) and calls `reset`
 * whenever that list changes, so `pick` is a loop over a prepared array that allocates nothing.
 */
import type { Server } from '../server.ts';

export interface PickContext {
  /** Client address, IPv4-mapped prefix stripped. */
  readonly clientIp: string;
  /** Servers that already failed for this client (redispatch); null when none. */
  readonly exclude: readonly Server[] | null;
}

export interface Balancer {
  /** The candidate list changed (membership, order or configured weights). */
  reset(candidates: readonly Server[]): void;
  /** A candidate that is neither full nor excluded, or undefined when there is none. */
  pick(candidates: readonly Server[], ctx: PickContext, now: number): Server | undefined;
}

/** Whether `s` can take this client now (capacity and redispatch exclusions; usability is the pool's job). */
export function eligible(s: Server, exclude: readonly Server[] | null): boolean {
  return !s.isFull() && (exclude === null || !exclude.includes(s));
}
