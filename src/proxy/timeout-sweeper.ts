/**
 * Connect and idle timeouts for every connection from one unref'd interval, instead of a timer per socket.
 * A socket timer (`socket.setTimeout`) is refreshed on every read and write, which is per-chunk work on the hot
 * path, and costs a timer object per held connection. Here a connection only records a deadline; the sweeper
 * visits the (few) connecting ones every tick and the open ones every idle tick, comparing byte counters to see
 * activity. A timeout therefore fires up to one tick late (ticks are a tenth of the shortest timeout, at most
 * 250 ms for connects and 5 s for idle).
 */
export interface TimedConnection {
  /** Called while the connection is connecting; fails the attempt when its deadline passed. */
  checkConnect(now: number): void;
  /** Called on every live connection each idle tick; closes it when no byte moved for its idle timeout. */
  checkIdle(now: number): void;
}

export class TimeoutSweeper {
  readonly connecting = new Set<TimedConnection>();
  readonly #live: ReadonlySet<TimedConnection>;
  #timer: NodeJS.Timeout | null = null;
  #tick = 250;
  #idleTick = 5_000;
  #nextIdle = 0;
  readonly #housekeeping: (() => void) | null;
  #nextHousekeeping = 0;

  /** `housekeeping` runs from the same timer about once a second (affinity table sweeps). */
  constructor(live: ReadonlySet<TimedConnection>, housekeeping: (() => void) | null = null) {
    this.#live = live;
    this.#housekeeping = housekeeping;
  }

  /** Sets the cadence from the shortest connect and idle timeouts in the configuration (0 = no idle timeout). */
  configure(minConnectMs: number, minIdleMs: number): void {
    const tick = clamp(Math.floor(minConnectMs / 10), 10, 250);
    this.#idleTick = minIdleMs > 0 ? clamp(Math.floor(minIdleMs / 10), 10, 5_000) : 5_000;
    if (tick !== this.#tick || this.#timer === null) {
      this.#tick = tick;
      this.stop();
      this.#timer = setInterval(onTick, tick, this);
      this.#timer.unref();
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  sweep(): void {
    const now = Date.now();
    if (this.connecting.size > 0) for (const c of this.connecting) c.checkConnect(now);
    if (now >= this.#nextIdle) {
      this.#nextIdle = now + this.#idleTick;
      for (const c of this.#live) c.checkIdle(now);
    }
    if (this.#housekeeping !== null && now >= this.#nextHousekeeping) {
      this.#nextHousekeeping = now + HOUSEKEEPING_MS;
      this.#housekeeping();
    }
  }
}

const HOUSEKEEPING_MS = 1_000;

function onTick(s: TimeoutSweeper): void {
  s.sweep();
}

function clamp(n: number, lo: number, hi: number): number {
  return n < lo ? lo : n > hi ? hi : n;
}
