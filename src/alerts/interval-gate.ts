/**
 * `min_interval` of one alert: per (event, pool, server[, feature]) at most one message per interval. Events in
 * between are held, and when the interval is over the latest of them is sent, saying how many it stands for; so a
 * flapping server costs one message per interval, and the last message always tells the last state.
 */
import type { AlertMessage } from './alert-message.ts';

/** Keys beyond this (servers renamed by reloads, many features) evict the idle ones first. */
const MAX_KEYS = 10_000;

interface KeyState {
  lastSent: number;
  /** The latest event not sent yet, and how many arrived since the last message (it included). */
  held: AlertMessage | null;
  count: number;
  since: number;
  timer: NodeJS.Timeout | null;
}

export class IntervalGate {
  readonly #minInterval: number;
  readonly #send: (m: AlertMessage) => void;
  readonly #keys = new Map<string, KeyState>();
  #stopped = false;

  constructor(minInterval: number, send: (m: AlertMessage) => void) {
    this.#minInterval = minInterval;
    this.#send = send;
  }

  offer(m: AlertMessage, now = Date.now()): void {
    if (this.#stopped) return;
    if (this.#minInterval <= 0) return this.#send(m);
    const key = `${m.event}\u0000${m.pool ?? ''}\u0000${m.server ?? ''}\u0000${m.feature ?? ''}`;
    const st = this.#keys.get(key);
    if (st === undefined || (st.held === null && now - st.lastSent >= this.#minInterval)) {
      if (st === undefined) this.#evictIfFull();
      this.#keys.set(key, { lastSent: now, held: null, count: 0, since: 0, timer: null });
      this.#send(m);
      return;
    }
    if (st.held === null) st.since = m.time;
    st.held = m;
    st.count++;
    if (st.timer === null) {
      st.timer = setTimeout(() => this.#flush(st), Math.max(0, st.lastSent + this.#minInterval - now));
      st.timer.unref();
    }
  }

  #flush(st: KeyState): void {
    st.timer = null;
    const m = st.held;
    if (m === null || this.#stopped) return;
    const folded = st.count - 1;
    st.held = null;
    st.count = 0;
    st.lastSent = Date.now();
    this.#send(folded > 0 ? { ...m, suppressed: folded, suppressedSince: st.since } : m);
  }

  #evictIfFull(): void {
    if (this.#keys.size < MAX_KEYS) return;
    for (const [k, st] of this.#keys) {
      if (st.held === null) {
        this.#keys.delete(k);
        if (this.#keys.size < MAX_KEYS) return;
      }
    }
  }

  stop(): void {
    this.#stopped = true;
    for (const st of this.#keys.values()) if (st.timer) clearTimeout(st.timer);
    this.#keys.clear();
  }
}
