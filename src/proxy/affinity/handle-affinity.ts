/**
 * Affinity by licd handle (SPEC 2.3 `by: handle`): the first line of a connection (`TOKENS primary.1a 8`,
 * `RESUME ...`, `CHECKIN ...`) names the server that issued the handle, and the connection goes there. Works
 * behind NAT, where one address hides many clients. A first line without a handle (HELLO on the license port) is
 * balanced normally, without a source binding: behind NAT that would pin every client to one server.
 *
 * Pool server names must be the licd server names (they are what handles carry).
 */
import type { AffinityConfig } from '../../config/proxy-config.ts';
import type { AffinityHost, AffinitySnapshot, PoolAffinity, SelectContext, SelectResult } from '../contracts.ts';
import type { Server } from '../server.ts';
import { serverOfHandleLine } from './first-line.ts';
import { placeOn, takesBound } from './pool-affinity.ts';

/** Where a first line sends its connection: a server, `null` (balance it), or `unknown` (answer UNKNOWN_HANDLE). */
export type HandleRoute = Server | null | 'unknown';

const RESUME = /^\s*resume\s/i;

export class HandleAffinity implements PoolAffinity {
  readonly by = 'handle' as const;
  readonly readsFirstLine = true;
  readonly #host: AffinityHost;
  #config: AffinityConfig;
  #hits = 0;
  #misses = 0;

  constructor(config: AffinityConfig, host: AffinityHost) {
    this.#config = config;
    this.#host = host;
  }

  /**
   * Decides from the first line. A handle naming a server that is not in the pool is refused (`unknown`). One
   * naming a server that is not usable now: `RESUME` (made to re-attach a session on another member, SPEC 4.3),
   * and any handle in `failover` / `master` pools (redundant sets that replicate sessions), go where new clients
   * go, and that server answers for itself; in a `balance` pool (independent servers, the session died with its
   * server) the proxy answers `ERR UNKNOWN_HANDLE` at once.
   */
  route(line: string): HandleRoute {
    const name = serverOfHandleLine(line);
    if (name === undefined) return null;
    const s = this.#host.server(name);
    if (s !== undefined && takesBound(s, this.#host.mode)) {
      this.#hits++;
      return s;
    }
    this.#misses++;
    if (s === undefined) return 'unknown';
    return RESUME.test(line) || this.#host.mode !== 'balance' ? null : 'unknown';
  }

  select(ctx: SelectContext): SelectResult {
    const s = ctx.handleServer;
    if (s != null) {
      if (takesBound(s, this.#host.mode)) return placeOn(s);
      // Became unusable while this connection queued or retried: same rule as `route`.
      if (this.#host.mode === 'balance') return null;
      ctx.handleServer = null;
    }
    return this.#host.balance(ctx);
  }

  release(_ctx: SelectContext): void {}

  configure(config: AffinityConfig): void {
    this.#config = config;
  }

  sweep(_budget: number): void {}

  countByServer(): Map<Server, number> {
    return new Map();
  }

  snapshot(): AffinitySnapshot {
    return {
      by: 'handle',
      bindings: 0,
      hits: this.#hits,
      misses: this.#misses,
      evictions: 0,
      capacityEvictions: 0,
      expired: 0,
      ttl: this.#config.ttl,
      maxBindings: this.#config.maxBindings,
    };
  }
}
