/**
 * The health state machine of one server (SPEC 2.4), driving a HealthSubject. Each monitor owns one timer and at
 * most one check in flight, so a slow or hung server never delays the checks of another, and a check is never
 * overlapped by the next one of the same server.
 *
 * Scheduling: `interval` while stable, `fast_interval` while a change is pending (UP with failures below `fall`,
 * DOWN with successes below `rise`, or any state while the subject is `hurried`: a master pool with no master),
 * `down_interval` while DOWN. The first check runs at once (within 50ms) so
 * clients are routed as soon as possible; the second lands at a random phase of the interval, which spreads a
 * thousand servers started together evenly over it. From then on each check is due one delay (+-5%) after the
 * previous one was due, not after it ended: a stall of the whole process (GC, a busy host) releases the checks
 * it delayed together, but they return to their own phases next round instead of staying bunched. A check that
 * overran its slot (a hung server eating the timeout) is followed after a tenth of the delay, so a hung server
 * is declared DOWN within `interval + timeout + (fall - 1) x (fast_interval + timeout)` at worst.
 */
import type { Logger } from 'pino';
import type { CheckConfig } from '../config/proxy-config.ts';
import { errorMessage } from '../common/errors.ts';
import { silentLogger } from '../common/logger.ts';
import type { Check } from './check.ts';
import { createCheck } from './create-check.ts';
import type { CheckResult, HealthMonitorLike, HealthState, HealthSubject } from './types.ts';

export interface HealthMonitorOptions {
  logger?: Logger;
  /** Source of jitter in [0, 1); tests pass a fixed one. */
  random?: () => number;
}

/** The first check of every server starts within this long of `start()`. */
const FIRST_CHECK_MAX_DELAY = 50;
/** Each later delay varies by +-5% so servers started together drift apart instead of checking in lockstep. */
const JITTER = 0.1;
/** After a check that overran its slot, the next one waits at least this fraction of the delay. */
const MIN_GAP = 0.1;
/** checkSoon starts a server's checks at least this far apart (ms): a burst of clients' hints is one check. */
const SOON_GAP = 50;

export class HealthMonitor implements HealthMonitorLike {
  readonly #subject: HealthSubject;
  readonly #log: Logger;
  readonly #random: () => number;
  #config: CheckConfig;
  #check: Check | null;

  #state: HealthState = 'unknown';
  /** Consecutive failures while UP, toward `fall`. */
  #failures = 0;
  /** Consecutive successes while DOWN, toward `rise`. */
  #successes = 0;
  #started = false;
  #timer: NodeJS.Timeout | undefined;
  #dueAt = 0;
  #inflight: AbortController | undefined;
  #completed = 0;
  #last: CheckResult | undefined;
  /** Date.now() when the last check started (checkSoon spaces checks from it). */
  #startedAt = 0;

  constructor(subject: HealthSubject, config: CheckConfig, opts: HealthMonitorOptions = {}) {
    this.#subject = subject;
    this.#config = config;
    this.#check = createCheck(config);
    this.#log = (opts.logger ?? silentLogger).child({ component: 'health', host: subject.host });
    this.#random = opts.random ?? Math.random;
  }

  get state(): HealthState {
    return this.#state;
  }

  get statusText(): string {
    if (this.#check === null) return 'no check';
    switch (this.#state) {
      case 'unknown':
        return 'no check';
      case 'up':
        return this.#failures > 0 ? `UP ${this.#failures}/${this.#config.fall}` : 'UP';
      case 'down':
        return this.#successes > 0 ? `DOWN ${this.#successes}/${this.#config.rise}` : 'DOWN';
    }
  }

  /** The last completed check, for callers that hold the monitor rather than the subject. */
  get lastCheck(): CheckResult | undefined {
    return this.#last;
  }

  get config(): CheckConfig {
    return this.#config;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    if (this.#check === null) {
      this.#markUnchecked('no check configured');
      return;
    }
    this.#schedule(this.#random() * Math.min(FIRST_CHECK_MAX_DELAY, this.#config.interval * JITTER));
  }

  stop(): void {
    this.#started = false;
    this.#clearTimer();
    this.#inflight?.abort();
    this.#inflight = undefined;
  }

  reportFailure(reason: string): void {
    // Without checks nothing would ever bring the server back UP, so passive failures do not count.
    if (!this.#started || this.#check === null) return;
    this.#apply(false, reason);
    if (this.#inflight) return;
    const delay = this.#nextDelay();
    if (this.#timer === undefined || this.#dueAt - Date.now() > delay) this.#schedule(delay);
  }

  checkSoon(): void {
    if (!this.#started || this.#check === null || this.#inflight) return;
    const at = Math.max(Date.now(), this.#startedAt + Math.min(SOON_GAP, this.#config.fastInterval * MIN_GAP));
    if (this.#timer === undefined || this.#dueAt > at) this.#schedule(at - Date.now());
  }

  update(config: CheckConfig): void {
    const before = this.#config;
    this.#config = config;
    if (JSON.stringify(before) === JSON.stringify(config)) return;
    this.#failures = Math.max(0, Math.min(this.#failures, config.fall - 1));
    this.#successes = Math.max(0, Math.min(this.#successes, config.rise - 1));
    this.#check = createCheck(config);
    // A result of the old check says nothing about the new one.
    this.#inflight?.abort();
    this.#inflight = undefined;
    if (!this.#started) return;
    if (this.#check === null) {
      this.#clearTimer();
      this.#markUnchecked('check disabled');
      return;
    }
    // Within one interval, at a random phase: a reload of a thousand servers must not check them all at once.
    this.#schedule(this.#random() * this.#nextDelay());
  }

  readonly #tick = (): void => {
    this.#timer = undefined;
    const check = this.#check;
    if (!this.#started || check === null || this.#inflight) return;
    const ac = new AbortController();
    this.#inflight = ac;
    this.#startedAt = Date.now();
    check.run(this.#subject, ac.signal).then(
      (result) => this.#onResult(ac, result),
      // Checks never reject; this keeps a bug in one from stopping the server's checks for good.
      (err: unknown) => this.#onResult(ac, { ok: false, reason: errorMessage(err), durationMs: 0, at: Date.now() }),
    );
  };

  #onResult(ac: AbortController, result: CheckResult): void {
    if (this.#inflight !== ac) return;
    this.#inflight = undefined;
    this.#completed++;
    this.#last = result;
    try {
      // Before any transition, so the pool sees the master flag and usage of the result that changes the state.
      this.#subject.recordCheck(result);
    } catch (err) {
      this.#log.error({ err: errorMessage(err) }, 'recordCheck failed');
    }
    // A master pool waiting for a master takes the member that reports (MASTER) at once: nobody else can serve.
    if (result.ok && this.#state === 'down' && this.#subject.upAtOnce?.(result) === true) this.#transition('up', 'reports MASTER');
    else this.#apply(result.ok, result.reason);
    const delay = this.#nextDelay();
    const now = Date.now();
    if (this.#completed === 1) {
      // Once, after the first result: move this server to a random phase of its interval.
      this.#schedule(delay * (0.5 + this.#random()));
      return;
    }
    const due = Math.max(this.#dueAt + delay * (1 + (this.#random() - 0.5) * JITTER), now + delay * MIN_GAP);
    this.#schedule(due - now);
  }

  #apply(ok: boolean, reason: string): void {
    switch (this.#state) {
      case 'unknown':
        // The first result decides at once: clients wait for it, they should not wait for `rise` more.
        this.#transition(ok ? 'up' : 'down', ok ? 'first check passed' : reason);
        return;
      case 'up':
        if (ok) {
          this.#failures = 0;
        } else if (++this.#failures >= this.#config.fall) {
          this.#transition('down', reason);
        } else {
          this.#log.debug({ reason, status: this.statusText }, 'check failed');
        }
        return;
      case 'down':
        if (!ok) {
          this.#successes = 0;
        } else if (++this.#successes >= this.#config.rise) {
          this.#transition('up', `${this.#config.rise} checks passed`);
        }
        return;
    }
  }

  #transition(to: 'up' | 'down', reason: string): void {
    this.#state = to;
    this.#failures = 0;
    this.#successes = 0;
    // The subject logs the transition with its pool and server names; here only the detail.
    this.#log.debug({ state: to, reason }, 'health transition');
    try {
      this.#subject.setHealth(to, reason);
    } catch (err) {
      this.#log.error({ err: errorMessage(err) }, 'setHealth failed');
    }
  }

  #markUnchecked(reason: string): void {
    this.#failures = 0;
    this.#successes = 0;
    if (this.#state !== 'up') this.#transition('up', reason);
  }

  #nextDelay(): number {
    const c = this.#config;
    if (this.#state !== 'unknown' && this.#subject.hurried?.() === true) return Math.min(c.fastInterval, this.#state === 'down' ? c.downInterval : c.interval);
    if (this.#state === 'down') return this.#successes > 0 ? c.fastInterval : c.downInterval;
    if (this.#state === 'up') return this.#failures > 0 ? c.fastInterval : c.interval;
    return Math.min(FIRST_CHECK_MAX_DELAY, c.interval * JITTER);
  }

  #schedule(delay: number): void {
    this.#clearTimer();
    const ms = Math.max(0, Math.round(delay));
    this.#dueAt = Date.now() + ms;
    this.#timer = setTimeout(this.#tick, ms);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** Where a factory finds the check settings: the config itself, or a pool that carries it (`pool.config.check`). */
export type CheckSource = CheckConfig | { readonly config: { readonly check: CheckConfig } };

/** What the proxy runtime calls to give each server a monitor. */
export type MonitorFactory = (subject: HealthSubject, check: CheckSource) => HealthMonitorLike;

/**
 * The factory the runtime is built with. It fits the proxy's `(server, pool)` call as well as `(subject, check)`.
 * `type: none` also gets a monitor (always UP, status `no check`), so a reload can switch a pool's checks on and
 * off without special cases.
 */
export function createMonitorFactory(opts: { logger?: Logger } = {}): MonitorFactory {
  const logger = opts.logger ?? silentLogger;
  return (subject, source) => {
    const check = 'config' in source ? source.config.check : source;
    const name = (subject as { name?: unknown }).name;
    return new HealthMonitor(subject, check, { logger: typeof name === 'string' ? logger.child({ server: name }) : logger });
  };
}
