/**
 * False denials as the client sees them (issue 13): a DENIED the client received while some server of the pool had
 * a free seat of the feature. Judged exactly, with no timing: the licd servers run in this process (one event loop),
 * and the licd that makes a denial logs it (its DENIED audit line, with the client's HELLO user) in the same tick as
 * it decides, so the free seats of every server read in that log call are a snapshot of one instant.
 *
 * With `retry_denied`, one client checkout can be denied by several servers in turn (the proxy holds those denials
 * and asks the next server); only the last one reaches the client. Each checkout therefore says HELLO with a user
 * name of its own, and the witness keeps the chain of denials per user; when the client receives DENIED, the last
 * denial of its chain is the one it received (the proxy forwards it after the licd decided it). At that instant,
 * each other server with a free seat makes the denial:
 *
 * - `raced` when that server had itself denied this same checkout earlier in the chain and released a seat after
 *   that denial: the seat came free behind the retry (after the server answered, before the last server did).
 *   Independent servers cannot close this window: whichever server answers last, another one asked before may have
 *   freed a seat in between. Counted apart, not as a false denial;
 * - `false` otherwise: a server with a free seat that the chain never asked, or that denied while it had one.
 *
 * A checkout is counted once: false if any server makes it false, else raced if any makes it raced.
 */
import pino from 'pino';
import type { Logger } from '../../src/common/logger.ts';
import type { InProcessLicd } from '../helpers/licd.ts';

interface Denial {
  server: string;
  /** Position in the witness's sequence of releases and denials (one sequence for every server). */
  seq: number;
  /** Every server's free seats of the feature in the tick of this denial. */
  free: Map<string, number>;
  /** Every server's last release (its `seq`) up to this denial; absent: none yet. */
  lastRelease: Map<string, number>;
}

export interface DenialFigures {
  /** Denials decided by a server (retried ones included). */
  decided: number;
  /** DENIED answers clients received. */
  received: number;
  falseDenied: number;
  raced: number;
  /** DENIED received for which no server logged a denial of that user (the proxy made it up: a defect). */
  unexplained: number;
}

export class DenialWitness implements DenialFigures {
  readonly feature: string;
  decided = 0;
  /** Seats the servers granted (their OUT lines): with one checkout per connection, what clients must have received. */
  grantsIssued = 0;
  received = 0;
  falseDenied = 0;
  raced = 0;
  unexplained = 0;
  /** The first few false denials, described (for the failure message). */
  readonly examples: string[] = [];
  #seq = 0;
  readonly #servers = new Map<string, InProcessLicd>();
  readonly #lastRelease = new Map<string, number>();
  readonly #chains = new Map<string, Denial[]>();

  constructor(feature: string) {
    this.feature = feature;
  }

  /** The logger to start licd `name` with: its DENIED lines are what the witness records. */
  logger(name: string): Logger {
    // pino's logMethod hook runs synchronously inside the licd's log call, in the tick of the decision.
    const onDenied = (user: string): void => this.#denied(name, user);
    const onGranted = (): void => void this.grantsIssued++;
    const feature = this.feature;
    return pino(
      {
        level: 'info',
        hooks: {
          logMethod(args, method) {
            const o = args[0] as unknown as { event?: string; user?: string; feature?: string } | undefined;
            if (o !== null && typeof o === 'object' && o.feature === feature && typeof o.user === 'string') {
              if (o.event === 'DENIED') onDenied(o.user);
              else if (o.event === 'OUT') onGranted();
            }
            return method.apply(this, args);
          },
        },
      },
      { write: () => {} },
    );
  }

  /** Watches licd `name` (started with `logger(name)`): its seat releases. */
  watch(name: string, l: InProcessLicd): void {
    this.#servers.set(name, l);
    const pool = l.server.pool(this.feature)!;
    const give = pool.give.bind(pool);
    pool.give = (holder, n) => {
      const freed = give(holder, n);
      if (freed > 0) this.#lastRelease.set(name, ++this.#seq);
      return freed;
    };
  }

  #denied(server: string, user: string): void {
    this.decided++;
    const free = new Map<string, number>();
    for (const [name, l] of this.#servers) free.set(name, l.server.pool(this.feature)!.free);
    const d: Denial = { server, seq: ++this.#seq, free, lastRelease: new Map(this.#lastRelease) };
    const chain = this.#chains.get(user);
    if (chain === undefined) this.#chains.set(user, [d]);
    else chain.push(d);
  }

  /** The client of `user` was granted: its chain (denials the proxy held) is over. */
  granted(user: string): void {
    this.#chains.delete(user);
  }

  /** The client of `user` received DENIED: judge the denial it received. */
  deniedReceived(user: string): 'ok' | 'false' | 'raced' | 'unexplained' {
    this.received++;
    const chain = this.#chains.get(user);
    this.#chains.delete(user);
    if (chain === undefined) {
      this.unexplained++;
      return 'unexplained';
    }
    const last = chain[chain.length - 1]!;
    let verdict: 'ok' | 'false' | 'raced' = 'ok';
    for (const [name, free] of last.free) {
      if (name === last.server || free < 1) continue;
      let asked: Denial | undefined;
      for (let i = chain.length - 2; i >= 0 && asked === undefined; i--) if (chain[i]!.server === name) asked = chain[i];
      const released = last.lastRelease.get(name);
      if (asked !== undefined && released !== undefined && released > asked.seq) {
        if (verdict === 'ok') verdict = 'raced';
        continue;
      }
      verdict = 'false';
      if (this.examples.length < 5) {
        const path = chain.map((d) => d.server).join(' -> ');
        const seats = [...last.free].map(([n, f]) => `${n}=${f}`).join(' ');
        this.examples.push(`${user}: asked ${path}; free at the last denial: ${seats}; ${name} ${asked === undefined ? 'never asked' : 'denied with no release since'}`);
      }
    }
    if (verdict === 'false') this.falseDenied++;
    else if (verdict === 'raced') this.raced++;
    return verdict;
  }

  get figures(): DenialFigures {
    const { decided, received, falseDenied, raced, unexplained } = this;
    return { decided, received, falseDenied, raced, unexplained };
  }
}
