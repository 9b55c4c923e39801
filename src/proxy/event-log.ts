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
}

export const EVENT_LOG_SIZE = 1000;

/**
 * Told of every event as it is added (alerts, the event file on disk, a shared list). Called synchronously on the
 * path that changed state: a subscriber only queues work, never blocks or throws back.
 */
export type EventSubscriber = (event: Readonly<ProxyEvent>) => void;

export class EventLog {
  readonly #ring: (ProxyEvent | undefined)[];
  #next = 0;
  #count = 0;
  readonly #subscribers = new Set<EventSubscriber>();

  constructor(size = EVENT_LOG_SIZE) {
    this.#ring = new Array<ProxyEvent | undefined>(size);
  }

  add(event: Omit<ProxyEvent, 'time'>, time = Date.now()): void {
    this.#ring[this.#next] = { time, ...event };
    this.#next = (this.#next + 1) % this.#ring.length;
    if (this.#count < this.#ring.length) this.#count++;
    if (this.#subscribers.size > 0) this.#notify(this.#ring[(this.#next - 1 + this.#ring.length) % this.#ring.length]!);
  }

  /** Returns the unsubscribe function. */
  subscribe(fn: EventSubscriber): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  /** Puts events of an earlier run (oldest first) in front of the ring, telling no subscriber: they are history. */
  restore(events: readonly ProxyEvent[]): void {
    const mine = this.list();
    const all = [...events, ...mine].slice(-this.#ring.length);
    this.#ring.fill(undefined);
    all.forEach((e, i) => (this.#ring[i] = { ...e }));
    this.#count = all.length;
    this.#next = all.length % this.#ring.length;
  }

  #notify(event: ProxyEvent): void {
    for (const fn of this.#subscribers) {
      try {
        fn(event);
      } catch {
        // A subscriber's bug must not undo the state change that raised the event.
      }
    }
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
