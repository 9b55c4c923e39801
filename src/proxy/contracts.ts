/**
 * The types the pool, its affinity variants (affinity/*) and the cluster worker's remote affinity share: how a
 * client is placed, and what an affinity needs of its pool. They live here, apart from every implementation, so
 * that none of those modules imports another only for its types (pool.ts <-> affinity/* <-> remote-affinity.ts was
 * a cycle).
 */
import type { AffinityBy, AffinityConfig, PoolConfig } from '../config/proxy-config.ts';
import type { Binding } from './affinity/affinity-table.ts';
import type { PickContext } from './balance/balancer-base.ts';
import type { Server } from './server.ts';

/** What the pool needs to know about a client to place it. A Connection is its own context (no allocation). */
export interface SelectContext extends PickContext {
  /** Frontend name, for affinity scopes and logs. */
  readonly frontendName: string;
  /** Affinity by source: the binding this client holds; set by the pool, released when its connection ends. */
  binding?: Binding<Server> | null;
  /** Affinity by handle: the server named by the handle in the client's first line (null: none). */
  handleServer?: Server | null;
}

/** A chosen server, `'full'` (candidates exist but none has a free slot: queue), or null (no usable server). */
export type SelectResult = Server | 'full' | null;

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

/** A connection that waits for the primary's answer before it is placed. */
export interface AskingContext extends SelectContext {
  affinityRef: object | null;
  /** The answer is in: place the connection now (unless it ended meanwhile). */
  affinityAnswered(): void;
}
