/**
 * The last state changes of the balancer (server up/down, failover, failback, reload, admin action), kept in a
 * fixed ring so a flapping server cannot grow memory. /api/events serves `list()`.
 */
export type EventKind = 'server' | 'failover' | 'failback' | 'pool' | 'reload' | 'admin' | 'worker';

export interface ProxyEvent {
  /** Date.now() when it happened. */
  time: number;
  kind: EventKind;
  pool?: string;
  server?: string;
  /** For state changes: the state before and after (`UP` -> `DOWN`, tier `0` -> `1`, ...). */
  from?: string;
  to?: string;
  reason: string;
  /** The cluster instance it happened on (SPEC 9; only in a cluster's shared history). */
  instance?: string;
}

export const EVENT_LOG_SIZE = 1000;

export class EventLog {
  readonly #ring: (ProxyEvent | undefined)[];
  #next = 0;
  #count = 0;
  #onAdd: ((e: ProxyEvent) => void) | null = null;

  constructor(size = EVENT_LOG_SIZE) {
    this.#ring = new Array<ProxyEvent | undefined>(size);
  }

  add(event: Omit<ProxyEvent, 'time'>, time = Date.now()): void {
    this.#ring[this.#next] = { time, ...event };
    this.#next = (this.#next + 1) % this.#ring.length;
    if (this.#count < this.#ring.length) this.#count++;
    this.#onAdd?.({ time, ...event });
  }

  /** One subscriber to every new event (a cluster's shared history, SPEC 9). */
  subscribe(f: (e: ProxyEvent) => void): void {
    this.#onAdd = f;
  }

  get size(): number {
    return this.#count;
  }

  /** Oldest first, as fresh plain objects (callers may keep or serialise them). */
  list(): ProxyEvent[] {
    const out: ProxyEvent[] = [];
    const n = this.#ring.length;
    const start = (this.#next - this.#count + n) % n;
    for (let i = 0; i < this.#count; i++) out.push({ ...this.#ring[(start + i) % n]! });
    return out;
  }
}
