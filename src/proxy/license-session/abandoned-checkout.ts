/**
 * A licd client of a `mode: master` pool that ends its side while its CHECKOUT (req-tagged, see withRequestId) has
 * no answer yet: the master that had it may have granted and replicated it before dying, and that replicated
 * session would wait `redundancy.resume_window` for a RESUME nobody will send, a seat lost to everyone meanwhile.
 * The proxy delivers the kept lines (HELLO + CHECKOUT req=...) to the serving master once one is known, reads the
 * answer and closes: licd re-attaches the replicated session by its req (or grants a fresh seat if there is none)
 * and frees it at the close. Nothing is written to the client. Bounded in count per pool and in time
 * (`timeouts.queue`); off the forwarding path (only a client that gave up gets here).
 */
import { connect } from 'node:net';
import type { Pool } from '../pool.ts';
import type { Server } from '../server.ts';
import { Answer, classifyAnswer, namedMaster } from './licd-lines.ts';

/** Cleanups in flight per pool; beyond, a seat waits for resume_window as it did before. */
export const MAX_ABANDONED_CLEANUPS = 1000;
/** How often a cleanup that has no master looks again. */
const RETRY_MS = 200;
const MAX_ANSWER_BYTES = 64 * 1024;

const inFlight = new WeakMap<Pool, number>();

/** Cleanups of `pool` in flight now (tests read it). */
export function abandonedCleanups(pool: Pool): number {
  return inFlight.get(pool) ?? 0;
}

/** Starts a cleanup of `lines` (the client's kept lines) in `pool`, `hint` first if it is the master. */
export function releaseAbandonedCheckout(pool: Pool, portName: string, lines: Buffer, count: number, hint: Server | null): void {
  const n = inFlight.get(pool) ?? 0;
  if (n >= MAX_ABANDONED_CLEANUPS) {
    pool.log.debug({ pool: pool.name }, 'abandoned checkout not released: too many in flight');
    return;
  }
  inFlight.set(pool, n + 1);
  new Cleanup(pool, portName, lines, count, hint).next();
}

class Cleanup {
  readonly #deadline: number;
  #hint: Server | null;
  #over = false;

  constructor(
    readonly pool: Pool,
    readonly portName: string,
    readonly lines: Buffer,
    readonly count: number,
    hint: Server | null,
  ) {
    this.#deadline = Date.now() + pool.config.timeouts.queue;
    this.#hint = hint;
  }

  #master(): Server | null {
    const h = this.#hint;
    this.#hint = null;
    if (h !== null && h.isMaster && h.takesBoundClients()) return h;
    for (const s of this.pool.servers) if (s.isMaster && s.takesBoundClients()) return s;
    return null;
  }

  next(): void {
    if (this.#over) return;
    if (Date.now() >= this.#deadline) return this.#end('no master within timeouts.queue');
    const s = this.#master();
    const port = s?.ports[this.portName];
    if (s === null || port === undefined) return void setTimeout(() => this.next(), RETRY_MS).unref();
    this.#try(s, port);
  }

  #try(s: Server, port: number): void {
    const sock = connect({ host: s.host, port, noDelay: true });
    let answers = 0;
    let buffered = '';
    let settled = false;
    const retry = (): void => {
      if (settled) return;
      settled = true;
      sock.destroy();
      setTimeout(() => this.next(), RETRY_MS).unref();
    };
    const timer = setTimeout(retry, this.pool.config.timeouts.connect);
    timer.unref();
    sock.setEncoding('latin1');
    sock.on('connect', () => sock.write(this.lines));
    sock.on('data', (chunk: string) => {
      if (settled) return;
      buffered += chunk;
      if (buffered.length > MAX_ANSWER_BYTES) return retry();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, nl).replace(/\r$/, '');
        buffered = buffered.slice(nl + 1);
        const a = classifyAnswer(line);
        if (a === Answer.NotServing) {
          const named = namedMaster(line);
          this.#hint = named !== undefined ? (this.pool.server(named) ?? null) : null;
          clearTimeout(timer);
          return retry();
        }
        if (++answers >= this.count || a === Answer.Granted || a === Answer.Exhausted || a === Answer.Denied) {
          settled = true;
          clearTimeout(timer);
          // The close frees what the CHECKOUT re-attached or was granted.
          sock.end();
          setTimeout(() => sock.destroy(), this.pool.config.timeouts.connect).unref();
          return this.#end(a === Answer.Granted ? `released on ${s.name}` : `answered ${line.slice(0, 60)} on ${s.name}`);
        }
      }
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      retry();
    });
  }

  #end(outcome: string): void {
    if (this.#over) return;
    this.#over = true;
    const n = (inFlight.get(this.pool) ?? 1) - 1;
    if (n <= 0) inFlight.delete(this.pool);
    else inFlight.set(this.pool, n);
    this.pool.log.debug({ pool: this.pool.name, outcome }, 'abandoned checkout');
  }
}
