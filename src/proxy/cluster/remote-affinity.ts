/**
 * Affinity by source in a worker process. The binding table lives in the primary, so that the license port and
 * the vendor port of one client reach the same server whichever workers accepted them. A new connection asks the
 * primary (one IPC round trip, the client socket still paused) before it is placed:
 *
 * - a live binding: the primary counts the connection on it and names the server;
 * - none: the primary reserves the key for this connection and answers null; the worker balances as usual and
 *   tells the primary its choice (`aff-bind`). Asks for the same key meanwhile wait in the primary for that choice,
 *   so two connections of one client accepted at once by two workers still agree.
 *
 * A connection that ends releases what it holds (`aff-release`); when a worker dies, the primary releases for it.
 */
import type { AffinityConfig } from '../../config/proxy-config.ts';
import { placeOn, takesBound } from '../affinity/pool-affinity.ts';
import type { AffinityHost, AffinitySnapshot, AskingContext, PoolAffinity, SelectContext, SelectResult } from '../contracts.ts';
import { Server } from '../server.ts';
import type { ToPrimary } from './messages.ts';

export type { AskingContext } from '../contracts.ts';

/** What one connection holds of the primary's table. */
interface RemoteRef {
  readonly id: number;
  readonly ip: string;
  readonly affinity: RemoteSourceAffinity;
  readonly ctx: AskingContext;
  phase: 'asking' | 'reserved' | 'held' | 'none';
  server: Server | null;
  /** The connection ended before the answer came: the answer is handed back at once. */
  cancelled: boolean;
}

/** One per worker process: connection ids and asks in flight, for every pool. */
export class AffinityClient {
  readonly #send: (m: ToPrimary) => void;
  readonly #asking = new Map<number, RemoteRef>();
  #nextId = 1;

  constructor(send: (m: ToPrimary) => void) {
    this.#send = send;
  }

  nextId(): number {
    return this.#nextId++;
  }

  send(m: ToPrimary): void {
    this.#send(m);
  }

  ask(pool: string, ref: RemoteRef): void {
    this.#asking.set(ref.id, ref);
    this.#send({ t: 'aff-ask', id: ref.id, pool, ip: ref.ip });
  }

  /** The primary is gone: asks in flight will never be answered; each is answered "no binding" (balanced here). */
  orphaned(): void {
    for (const id of [...this.#asking.keys()]) this.answered(id, null);
  }

  /** The primary's `aff` message. */
  answered(id: number, server: string | null): void {
    const ref = this.#asking.get(id);
    if (ref === undefined) return;
    this.#asking.delete(id);
    ref.affinity.answered(ref, server);
  }
}

export class RemoteSourceAffinity implements PoolAffinity {
  readonly by = 'source' as const;
  readonly readsFirstLine = false;
  readonly #host: AffinityHost;
  readonly #client: AffinityClient;
  #config: AffinityConfig;

  constructor(config: AffinityConfig, host: AffinityHost, client: AffinityClient) {
    this.#config = config;
    this.#host = host;
    this.#client = client;
  }

  /** Asks the primary for the connection's binding; `ctx.affinityAnswered()` follows (at once without a peer address). */
  ask(ctx: AskingContext): void {
    const ip = ctx.clientIp;
    if (ip === '') return ctx.affinityAnswered();
    const ref: RemoteRef = { id: this.#client.nextId(), ip, affinity: this, ctx, phase: 'asking', server: null, cancelled: false };
    ctx.affinityRef = ref;
    this.#client.ask(this.#host.name, ref);
  }

  answered(ref: RemoteRef, server: string | null): void {
    if (ref.cancelled) {
      ref.phase = server === null ? 'reserved' : 'held';
      return this.#giveBack(ref);
    }
    const s = server === null ? undefined : this.#host.server(server);
    ref.phase = server === null ? 'reserved' : 'held';
    if (s !== undefined) ref.server = s;
    // Bound to a server this worker does not have (a reload is on its way): hand it back, balance here.
    else if (server !== null) this.#giveBack(ref);
    ref.ctx.affinityAnswered();
  }

  select(ctx: SelectContext): SelectResult {
    const ref = (ctx as Partial<AskingContext>).affinityRef as RemoteRef | null | undefined;
    if (ref == null || ref.phase === 'asking') return this.#host.balance(ctx);
    const bound = ref.server;
    if (bound !== null && takesBound(bound, this.#host.mode)) return placeOn(bound);
    // No binding, or its server stopped taking bound clients here: balance, and (re)bind to the choice.
    const r = this.#host.balance(ctx);
    if (r instanceof Server) {
      ref.server = r;
      ref.phase = 'held';
      this.#client.send({ t: 'aff-bind', id: ref.id, pool: this.#host.name, ip: ref.ip, server: r.name });
    } else if (ref.phase === 'reserved') {
      // Nothing to bind to now: let the client's other connections decide for themselves.
      ref.phase = 'none';
      this.#client.send({ t: 'aff-bind', id: ref.id, pool: this.#host.name, ip: ref.ip, server: null });
    }
    return r;
  }

  release(ctx: SelectContext): void {
    const c = ctx as Partial<AskingContext>;
    const ref = c.affinityRef as RemoteRef | null | undefined;
    if (ref == null) return;
    c.affinityRef = null;
    if (ref.phase === 'asking') ref.cancelled = true;
    else this.#giveBack(ref);
  }

  #giveBack(ref: RemoteRef): void {
    const pool = this.#host.name;
    if (ref.phase === 'held') this.#client.send({ t: 'aff-release', id: ref.id });
    else if (ref.phase === 'reserved') this.#client.send({ t: 'aff-bind', id: ref.id, pool, ip: ref.ip, server: null });
    ref.phase = 'none';
  }

  configure(config: AffinityConfig): void {
    this.#config = config;
  }

  sweep(_budget: number): void {}

  countByServer(): Map<Server, number> {
    return new Map();
  }

  /** The table and its counters are the primary's; a worker has none of its own. */
  snapshot(): AffinitySnapshot {
    const { ttl, maxBindings } = this.#config;
    return { by: 'source', bindings: 0, hits: 0, misses: 0, evictions: 0, capacityEvictions: 0, expired: 0, ttl, maxBindings };
  }
}
