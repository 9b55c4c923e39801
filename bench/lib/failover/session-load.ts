/**
 * Short license sessions through a balancer, each one recorded (when it started, which server said HELLO, when
 * it was granted, how it failed), so a fault's effect can be read off afterwards: how many sessions it cut, how
 * many new ones failed, when the secondary granted first. Shared by the failover tests and `bench/failover.ts`.
 *
 * One session = connect, HELLO, CHECKOUT, CHECKIN, close, with the real client library and `resume: false`, so a
 * failure is seen as it is and not hidden by a reconnect. Any error is a failed session.
 *
 * Two ways to load:
 * - `workers: n`: n sessions back to back (closed loop), as the usual load generators do;
 * - `rate: r`: r new sessions per second whatever the others do (open loop). A hung server holds every closed-loop
 *   worker that reaches it until the client's own timeout, so new sessions stop arriving and a closed loop measures
 *   that timeout rather than the balancer; an open loop keeps offering new clients, as a site's users do.
 * Both are bounded: `maxSessions` sessions at most, none started after `maxDurationMs`, and each one ends within
 * its answer timeout.
 */
import { LicenseClient } from '../../../src/client/license-client.ts';

export interface SessionRecord {
  /** Date.now() when the client began to connect. */
  start: number;
  /** Date.now() when it ended (closed after CHECKIN, or failed). */
  end: number;
  /** Server name from the HELLO answer; null when no HELLO answer came. */
  server: string | null;
  /** Date.now() of the GRANTED answer; 0 when none. */
  grantedAt: number;
  /** `CODE: message` of the failure; null for a whole session. */
  error: string | null;
}

export interface SessionLoadOptions {
  port: number;
  host?: string;
  /** Closed loop: this many sessions back to back. */
  workers?: number;
  /** Open loop: this many new sessions per second. */
  rate?: number;
  /** Open loop: sessions beyond this many in flight are not started (counted in `skipped`). Default 2000. */
  maxInFlight?: number;
  /** Default LS-DYNA. */
  feature?: string;
  /** Connect and answer timeout of each session. Default 5s. */
  timeoutMs?: number;
  /** Default 200,000. */
  maxSessions?: number;
  /** No session starts after this long. Default 120s. */
  maxDurationMs?: number;
}

const OPEN_LOOP_TICK_MS = 5;
/** After a stall of the process the open loop catches up at most this many sessions per tick, not all at once. */
const MAX_BURST = 50;

export class SessionLoad {
  readonly records: SessionRecord[] = [];
  readonly #opts: Required<Omit<SessionLoadOptions, 'workers' | 'rate'>> & { workers: number; rate: number };
  readonly #outstanding = new Set<Promise<void>>();
  #running = false;
  #startedAt = 0;
  #started = 0;
  #timer: NodeJS.Timeout | undefined;
  #workers: Promise<void>[] = [];
  /** Open loop: arrivals dropped because `maxInFlight` sessions were still running. */
  skipped = 0;

  constructor(opts: SessionLoadOptions) {
    if (!opts.workers === !opts.rate) throw new Error('SessionLoad: give exactly one of workers or rate');
    this.#opts = {
      host: '127.0.0.1',
      maxInFlight: 2_000,
      feature: 'LS-DYNA',
      timeoutMs: 5_000,
      maxSessions: 200_000,
      maxDurationMs: 120_000,
      workers: 0,
      rate: 0,
      ...opts,
    };
  }

  get inFlight(): number {
    return this.#outstanding.size;
  }

  start(): this {
    if (this.#running) return this;
    this.#running = true;
    this.#startedAt = Date.now();
    if (this.#opts.workers > 0) {
      for (let i = 0; i < this.#opts.workers; i++) this.#workers.push(this.#worker());
    } else {
      this.#timer = setInterval(() => this.#arrivals(), OPEN_LOOP_TICK_MS);
    }
    return this;
  }

  /** Starts no new session and resolves once every session in flight has ended (each is bounded by its timeout). */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.all(this.#workers);
    while (this.#outstanding.size > 0) await Promise.all([...this.#outstanding]);
  }

  #mayStart(): boolean {
    const o = this.#opts;
    return this.#running && this.#started < o.maxSessions && Date.now() - this.#startedAt < o.maxDurationMs;
  }

  async #worker(): Promise<void> {
    while (this.#mayStart()) await this.#track();
  }

  #arrivals(): void {
    if (!this.#mayStart()) return;
    const due = Math.floor(((Date.now() - this.#startedAt) * this.#opts.rate) / 1000) + 1;
    let burst = 0;
    while (this.#started + this.skipped < due && burst++ < MAX_BURST && this.#mayStart()) {
      if (this.#outstanding.size >= this.#opts.maxInFlight) this.skipped++;
      else void this.#track();
    }
    // A stall longer than the burst allows is not made up later: the rate stays the rate from here on.
    if (this.#started + this.skipped < due - MAX_BURST) this.skipped = due - this.#started;
  }

  #track(): Promise<void> {
    this.#started++;
    const p = this.#session().then((r) => void this.records.push(r));
    this.#outstanding.add(p);
    void p.finally(() => this.#outstanding.delete(p));
    return p;
  }

  async #session(): Promise<SessionRecord> {
    const o = this.#opts;
    const rec: SessionRecord = { start: Date.now(), end: 0, server: null, grantedAt: 0, error: null };
    let c: LicenseClient | undefined;
    try {
      c = await LicenseClient.connect(o.host, o.port, { resume: false, timeout: o.timeoutMs });
      rec.server = (await c.hello('load', 'ws')).server;
      const g = await c.checkout(o.feature);
      rec.grantedAt = Date.now();
      await c.checkin(g.handle);
      await c.close();
    } catch (err) {
      const e = err as { code?: string; message?: string };
      rec.error = `${e.code ?? 'ERROR'}: ${e.message ?? String(err)}`;
      c?.destroy();
    }
    rec.end = Date.now();
    return rec;
  }
}

/** Sessions whose GRANTED came from `server`, in grant order. */
export function grantsBy(records: readonly SessionRecord[], server: string): SessionRecord[] {
  return records.filter((r) => r.server === server && r.grantedAt > 0).sort((a, b) => a.grantedAt - b.grantedAt);
}
