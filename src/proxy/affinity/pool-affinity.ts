/**
 * Affinity of one pool (SPEC 2.3): the hook `Pool.select` hands a client to before balancing, so that every port
 * of a license session reaches the same server. Variants: `source-affinity.ts` (client IP -> server table) and
 * `handle-affinity.ts` (the server named in a licd handle). With `by: none` a pool has no affinity object at
 * all, so the plain balancing path pays nothing.
 */
import type { AskingContext } from '../cluster/remote-affinity.ts';
import type { AffinityBy, AffinityConfig, PoolConfig } from '../../config/proxy-config.ts';
import type { SelectContext, SelectResult } from '../pool.ts';
import type { Server } from '../server.ts';

/** What an affinity needs of its pool. */
export interface AffinityHost {
  readonly name: string;
  readonly mode: PoolConfig['mode'];
  /** Balancing without affinity (tiers, modes, algorithm, capacity, exclusions). */
  balance(ctx: SelectContext): SelectResult;
  server(name: string): Server | undefined;
}

/** Affinity counters of a pool, for /stats and /metrics (names read by the stats adapter). */
export interface AffinitySnapshot {
  by: AffinityBy;
  /** Live bindings now (by source; 0 by handle, where the binding travels in the handle itself). */
  bindings: number;
  /** Connections routed by an existing binding (by handle: by a handle naming a usable server). */
  hits: number;
  /** Connections that found no usable binding and were balanced (by handle: handles naming no usable server). */
  misses: number;
  /** Bindings dropped: capacity evictions plus expiries (TTL over, server DOWN / MAINT / removed). */
  evictions: number;
  /** The part of `evictions` due to `max_bindings`. */
  capacityEvictions: number;
  /** The part of `evictions` due to TTL or to the server's bindings being dropped. */
  expired: number;
  ttl: number;
  maxBindings: number;
}

export interface PoolAffinity {
  readonly by: Exclude<AffinityBy, 'none'>;
  /** Whether connections must first read the client's first line (by handle). */
  readonly readsFirstLine: boolean;
  /**
   * Present when the binding must be fetched before placing (a worker asking the cluster primary): the
   * connection calls it, stays paused, and is placed when `ctx.affinityAnswered()` is called.
   */
  ask?(ctx: AskingContext): void;
  /** Places a client: its bound server while usable, else balances (and binds). */
  select(ctx: SelectContext): SelectResult;
  /** The client's connection ended: the binding's TTL may start. */
  release(ctx: SelectContext): void;
  /** Reload of the same pool with the same `by`: new limits, bindings kept. */
  configure(config: AffinityConfig): void;
  /** Periodic clean-up of expired bindings, visiting at most `budget` entries. */
  sweep(budget: number): void;
  snapshot(): AffinitySnapshot;
  /** Live bindings per server (walks the table: snapshots only). */
  countByServer(): Map<Server, number>;
  /**
   * Drops the bindings with no open connection whose server matches (failback to a lower tier, SPEC 8.1); returns
   * how many. Absent where bindings are not kept here (by handle; cluster workers).
   */
  dropIdle?(match: (server: Server) => boolean): number;
}

/**
 * Whether a client bound to `s` may still be sent there. DRAIN, weight 0 and a pending failback delay keep bound
 * clients (a server in its failback delay can only hold bindings made after its recovery, when it was the only
 * usable one); DOWN, MAINT and removal do not; in `master` mode only the master serves.
 */
export function takesBound(s: Server, mode: PoolConfig['mode']): boolean {
  return s.takesBoundClients() && (mode !== 'master' || s.isMaster);
}

/** The bound server, or `'full'` when it has no free slot (the client waits in the pool queue for it). */
export function placeOn(s: Server): SelectResult {
  return s.isFull() ? 'full' : s;
}
