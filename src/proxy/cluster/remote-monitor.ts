/**
 * A worker's stand-in for a server's health monitor. Checks run once, in the primary; a worker's server follows
 * the state the primary sends (`Server.mirror`), and a failure a worker sees on a real connection (passive health,
 * `check.observe`) goes to the primary's monitor, which decides for every worker.
 */
import type { CheckConfig } from '../../config/proxy-config.ts';
import type { HealthMonitorLike, HealthState } from '../../health/types.ts';
import type { Server, ServerMirror } from '../server.ts';
import type { ToPrimary } from './messages.ts';

/** The latest state the primary sent for each server, kept so a server built later (a reload) starts from it. */
export class MirrorBook {
  readonly #states = new Map<string, ServerMirror>();

  set(pool: string, server: string, state: ServerMirror): void {
    this.#states.set(`${pool}\0${server}`, state);
  }

  get(pool: string, server: string): ServerMirror | undefined {
    return this.#states.get(`${pool}\0${server}`);
  }
}

export class RemoteMonitor implements HealthMonitorLike {
  readonly #server: Server;
  readonly #pool: string;
  readonly #book: MirrorBook;
  readonly #send: (m: ToPrimary) => void;

  constructor(server: Server, pool: string, book: MirrorBook, send: (m: ToPrimary) => void) {
    this.#server = server;
    this.#pool = pool;
    this.#book = book;
    this.#send = send;
  }

  get state(): HealthState {
    return this.#server.health;
  }

  get statusText(): string {
    return this.#server.status;
  }

  /** Called when the pool starts the server (synchronously, before any client can reach it). */
  start(): void {
    const m = this.#book.get(this.#pool, this.#server.name);
    if (m !== undefined) this.#server.mirror(m);
  }

  stop(): void {}

  reportFailure(reason: string): void {
    this.#send({ t: 'report', pool: this.#pool, server: this.#server.name, reason });
  }

  update(_check: CheckConfig): void {}
}
