/**
 * Affinity by source across the instances of a cluster (SPEC 9). The pool's own table stays (it is what routes
 * when Redis is away, and what the stats count); before a new connection is placed, Redis is asked which server
 * the client is bound to, proposing this instance's choice (its own binding, else the balancer's pick). Redis
 * keeps the first binding made by any instance, so the connection goes where the client's other connections went,
 * whichever instance accepted them.
 *
 * The ask never holds a connection longer than `cluster.timeout`: past it, or at once when Redis is down, the
 * connection is placed with local state alone. A late answer that names another server, or the write-back of a
 * binding made while Redis was down, is settled first-writer-wins (shared-bindings.ts).
 */
import type { AffinityConfig } from '../../config/proxy-config.ts';
import { placeOn, takesBound } from '../affinity/pool-affinity.ts';
import { SourceAffinity } from '../affinity/source-affinity.ts';
import type { AffinityHost, AskingContext, SelectContext, SelectResult } from '../contracts.ts';
import { Server } from '../server.ts';
import type { SharedBindings } from './shared-bindings.ts';

/** One connection's exchange with Redis. */
interface SharedAsk {
  readonly ip: string;
  readonly ctx: AskingContext;
  phase: 'asking' | 'answered' | 'alone';
  /** Sent to Redis (an unanswered one may still land: its answer is settled late). */
  sent: boolean;
  /** This instance's proposal. */
  proposal: Server | null;
  /** The server Redis holds for the client ('' = none). */
  winner: string;
  /** Consumed by the first `select` of the connection. */
  used: boolean;
  timer: NodeJS.Timeout | null;
}

export class SharedSourceAffinity extends SourceAffinity {
  readonly #host: AffinityHost;
  readonly #shared: SharedBindings;
  readonly #timeout: number;
  readonly #onError: () => void;
  #ttl: number;

  constructor(config: AffinityConfig, host: AffinityHost, shared: SharedBindings, timeoutMs: number, onError: () => void) {
    super(config, host);
    this.#host = host;
    this.#shared = shared;
    this.#timeout = timeoutMs;
    this.#onError = onError;
    this.#ttl = config.ttl;
  }

  ask(ctx: AskingContext): void {
    const ip = ctx.clientIp;
    if (ip === '') return ctx.affinityAnswered();
    const a: SharedAsk = { ip, ctx, phase: 'asking', sent: false, proposal: this.#propose(ctx, ip), winner: '', used: false, timer: null };
    ctx.affinityRef = a;
    if (!this.#shared.usable) {
      this.#onError();
      a.phase = 'alone';
      return ctx.affinityAnswered();
    }
    a.sent = true;
    a.timer = setTimeout(() => this.#giveUp(a), this.#timeout);
    this.#shared.claim(this.#host.name, ip, a.proposal?.name ?? '', this.#ttl).then(
      (winner) => this.#answered(a, winner),
      () => this.#failed(a),
    );
  }

  /** This instance's choice for the client: its own live binding, else the balancer's pick (null: none). */
  #propose(ctx: SelectContext, ip: string): Server | null {
    const mode = this.#host.mode;
    const local = this.table.peek(ip);
    if (local !== undefined && takesBound(local, mode)) return local;
    const r = this.#host.balance(ctx);
    return r instanceof Server ? r : null;
  }

  #answered(a: SharedAsk, winner: string | null): void {
    if (a.phase !== 'asking') {
      // Late (placed alone meanwhile): Redis now holds the first binding; a different one is adopted for later.
      return this.#shared.settle(this.#host.name, a.ip, winner, this.table.peek(a.ip)?.name);
    }
    clearTimeout(a.timer!);
    a.phase = 'answered';
    a.winner = winner ?? '';
    a.ctx.affinityAnswered();
  }

  #failed(a: SharedAsk): void {
    this.#onError();
    if (a.phase !== 'asking') return;
    clearTimeout(a.timer!);
    a.sent = false;
    a.phase = 'alone';
    a.ctx.affinityAnswered();
  }

  #giveUp(a: SharedAsk): void {
    if (a.phase !== 'asking') return;
    this.#onError();
    a.phase = 'alone';
    a.ctx.affinityAnswered();
  }

  override select(ctx: SelectContext): SelectResult {
    const a = (ctx as Partial<AskingContext>).affinityRef as SharedAsk | null | undefined;
    if (a == null || a.used || a.phase === 'asking') return super.select(ctx);
    a.used = true;
    const pool = this.#host.name;
    if (a.phase === 'answered') {
      const w = a.winner === '' ? undefined : this.#host.server(a.winner);
      if (w !== undefined && takesBound(w, this.#host.mode)) return this.#place(ctx, a.ip, w);
      // No binding yet (our proposal found none to make), or bound to a server that does not serve here
      // (DOWN, MAINT, unknown to this configuration): decide here and rebind, unless another instance did first.
      const r = this.#placeAlone(ctx, a);
      const mine = ctx.binding?.server.name;
      if (mine !== undefined && mine !== a.winner) {
        this.#shared.replace(pool, a.ip, a.winner, mine, this.#ttl).then(
          (winner) => this.#shared.settle(pool, a.ip, winner, this.table.peek(a.ip)?.name),
          () => this.#onError(),
        );
      }
      return r;
    }
    // Alone: Redis is down (written back when it returns) or slow (the claim in flight lands by itself).
    const r = this.#placeAlone(ctx, a);
    const mine = ctx.binding?.server.name;
    if (mine !== undefined && (!a.sent || mine !== a.proposal?.name)) this.#shared.decidedAlone(pool, a.ip, mine, this.#ttl);
    return r;
  }

  /** Local state decides: the client's binding here if any, else this instance's proposal, else a fresh balance. */
  #placeAlone(ctx: SelectContext, a: SharedAsk): SelectResult {
    const p = a.proposal;
    if (p !== null && this.table.peek(a.ip) === undefined && takesBound(p, this.#host.mode)) return this.#place(ctx, a.ip, p);
    return super.select(ctx);
  }

  /** Places on `s` and holds the client's local binding to it (made or adopted). */
  #place(ctx: SelectContext, ip: string, s: Server): SelectResult {
    const table = this.table;
    const b = table.acquire(ip);
    if (b !== undefined && b.server === s) ctx.binding = b;
    else {
      if (b !== undefined) table.release(b);
      ctx.binding = table.bind(ip, s);
    }
    return placeOn(s);
  }

  override release(ctx: SelectContext): void {
    const c = ctx as Partial<AskingContext>;
    const a = c.affinityRef as SharedAsk | null | undefined;
    if (a != null) {
      c.affinityRef = null;
      if (a.phase === 'asking') {
        clearTimeout(a.timer!);
        a.phase = 'alone';
      }
    }
    const b = ctx.binding;
    super.release(ctx);
    if (b != null && b.conns === 0) this.#shared.touch(this.#host.name, a?.ip ?? ctx.clientIp, this.#ttl);
  }

  override configure(config: AffinityConfig): void {
    super.configure(config);
    this.#ttl = config.ttl;
  }

  /**
   * With workers (the primary's side, affinity-broker.ts): the server a worker's new client is bound to, decided
   * with Redis as `ask` does (the proposal is the primary's balance), or with local state past `cluster.timeout`.
   * `done(null)`: no server to bind to; the worker balances by itself.
   */
  decideFor(ip: string, done: (server: Server | null) => void): void {
    const pool = this.#host.name;
    const proposal = this.#propose({ clientIp: ip, exclude: null, frontendName: '' }, ip);
    let settled = false;
    const alone = (sent: boolean): void => {
      if (settled) return;
      settled = true;
      this.#onError();
      if (proposal !== null && !sent) this.#shared.decidedAlone(pool, ip, proposal.name, this.#ttl);
      done(proposal);
    };
    if (!this.#shared.usable) return alone(false);
    const timer = setTimeout(() => alone(true), this.#timeout);
    this.#shared.claim(pool, ip, proposal?.name ?? '', this.#ttl).then(
      (winner) => {
        if (settled) return this.#shared.settle(pool, ip, winner, this.table.peek(ip)?.name);
        settled = true;
        clearTimeout(timer);
        const w = winner === null ? undefined : this.#host.server(winner);
        if (w !== undefined && takesBound(w, this.#host.mode)) return done(w);
        if (proposal !== null && winner !== null) {
          this.#shared.replace(pool, ip, winner, proposal.name, this.#ttl).then(
            (won) => this.#shared.settle(pool, ip, won, this.table.peek(ip)?.name),
            () => this.#onError(),
          );
        }
        done(proposal);
      },
      () => {
        clearTimeout(timer);
        alone(false);
      },
    );
  }

  /** Adopts a binding another instance made first, for the client's later connections. */
  adopt(ip: string, server: string): void {
    const s = this.#host.server(server);
    if (s === undefined || !takesBound(s, this.#host.mode)) return;
    const b = this.table.bind(ip, s);
    this.table.release(b);
  }

  /** Keeps the Redis bindings of clients with open connections from expiring. */
  refreshBusy(): void {
    this.#shared.refresh(this.#host.name, this.table.busyKeys(), this.#ttl);
  }
}
