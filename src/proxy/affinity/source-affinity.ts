/**
 * Affinity by client IP (SPEC 2.3 `by: source`). The binding is made in `select`, synchronously at accept and
 * before the server connection is opened, so a client's second connection, even one accepted in the same tick,
 * finds it (the race of haproxy issue 3243, where a stick table learned the server only once connected).
 */
import type { AffinityConfig } from '../../config/proxy-config.ts';
import type { AffinityHost, AffinitySnapshot, PoolAffinity, SelectContext, SelectResult } from '../contracts.ts';
import { Server } from '../server.ts';
import { AffinityTable } from './affinity-table.ts';
import { placeOn, takesBound } from './pool-affinity.ts';

export class SourceAffinity implements PoolAffinity {
  readonly by = 'source' as const;
  readonly readsFirstLine = false;
  readonly #host: AffinityHost;
  readonly #table: AffinityTable<Server>;

  constructor(config: AffinityConfig, host: AffinityHost) {
    this.#host = host;
    this.#table = new AffinityTable<Server>({ ttl: config.ttl, maxBindings: config.maxBindings });
  }

  /** The table itself (tests). */
  get table(): AffinityTable<Server> {
    return this.#table;
  }

  select(ctx: SelectContext): SelectResult {
    const table = this.#table;
    const mode = this.#host.mode;
    // Called again for the same connection when it waited in the queue or retries after a failed connect: it
    // goes back to the server it holds while that server is usable, excluded or not (no redispatch away).
    const held = ctx.binding;
    if (held != null) {
      if (table.isLive(held) && takesBound(held.server, mode)) return placeOn(held.server);
      table.release(held);
      ctx.binding = null;
    }
    const key = ctx.clientIp;
    if (key === '') return this.#host.balance(ctx); // peer address unknown (already gone): nothing to key on
    const b = table.acquire(key);
    if (b !== undefined) {
      if (takesBound(b.server, mode)) {
        ctx.binding = b;
        return placeOn(b.server);
      }
      // Live by epoch but unusable for another reason (lost MASTER, health unknown): balance anew.
      table.release(b);
      table.unbind(key, b);
    }
    const r = this.#host.balance(ctx);
    if (r instanceof Server) ctx.binding = table.bind(key, r);
    return r;
  }

  release(ctx: SelectContext): void {
    const b = ctx.binding;
    if (b == null) return;
    ctx.binding = null;
    this.#table.release(b);
  }

  configure(config: AffinityConfig): void {
    this.#table.configure({ ttl: config.ttl, maxBindings: config.maxBindings });
  }

  sweep(budget: number): void {
    this.#table.sweep(budget);
  }

  dropIdle(match: (server: Server) => boolean): number {
    return this.#table.dropIdle(match);
  }

  countByServer(): Map<Server, number> {
    return this.#table.countByServer();
  }

  snapshot(): AffinitySnapshot {
    const st = this.#table.stats;
    let live = 0;
    for (const n of this.#table.countByServer().values()) live += n;
    return {
      by: 'source',
      bindings: live,
      hits: st.hits,
      misses: st.misses,
      evictions: st.evictions + st.expired,
      capacityEvictions: st.evictions,
      expired: st.expired,
      ttl: this.#table.ttl,
      maxBindings: this.#table.maxBindings,
    };
  }
}
