/**
 * The event history of a cluster (SPEC 9): every instance appends its events, with its name, to one capped Redis
 * list (the last EVENT_LOG_SIZE) and announces each on the notify channel. Each instance keeps a mirror of the
 * list, loaded when its link comes up and followed through the announcements, so /api/events answers at once from
 * memory. Events of a time without Redis are kept here and appended when it returns.
 */
import type { Logger } from '../../common/logger.ts';
import { EVENT_LOG_SIZE, type EventLog, type ProxyEvent } from '../event-log.ts';
import type { ClusterKeys } from './keys.ts';
import { parseEvent, parseNotice } from './notify.ts';
import type { RedisLink } from './redis-link.ts';

export class SharedEvents {
  readonly #link: RedisLink;
  readonly #keys: ClusterKeys;
  readonly #instance: string;
  readonly #log: Logger;
  #mirror: ProxyEvent[] = [];
  #pending: ProxyEvent[] = [];

  constructor(link: RedisLink, keys: ClusterKeys, instance: string, log: Logger) {
    this.#link = link;
    this.#keys = keys;
    this.#instance = instance;
    this.#log = log;
  }

  attach(events: EventLog): void {
    this.#link.sub.on('message', (channel: string, text: string) => {
      if (channel !== this.#keys.notify) return;
      const n = parseNotice(text);
      if (n?.t === 'event') this.#remember(n.e);
    });
    this.#link.onUp(() => void this.#load());
    for (const e of events.list()) this.#append(e);
    events.subscribe((e) => this.#append(e));
  }

  list(): ProxyEvent[] {
    return this.#mirror.map((e) => ({ ...e }));
  }

  #append(event: ProxyEvent): void {
    const e = { ...event, instance: this.#instance };
    if (!this.#link.isUp) return this.#alone(e);
    const json = JSON.stringify(e);
    this.#link.cmd
      .multi()
      .rpush(this.#keys.events, json)
      .ltrim(this.#keys.events, -EVENT_LOG_SIZE, -1)
      .publish(this.#keys.notify, JSON.stringify({ t: 'event', e }))
      .exec()
      .catch(() => {
        this.#link.countError();
        this.#alone(e);
      });
  }

  /** Redis away: the event shows here now and goes to the shared list when Redis returns. */
  #alone(e: ProxyEvent): void {
    this.#pending.push(e);
    if (this.#pending.length > EVENT_LOG_SIZE) this.#pending.shift();
    this.#remember(e);
  }

  #remember(e: ProxyEvent): void {
    this.#mirror.push(e);
    if (this.#mirror.length > EVENT_LOG_SIZE) this.#mirror.splice(0, this.#mirror.length - EVENT_LOG_SIZE);
  }

  async #load(): Promise<void> {
    const cmd = this.#link.cmd;
    try {
      const pending = this.#pending;
      this.#pending = [];
      if (pending.length > 0) {
        await cmd.multi().rpush(this.#keys.events, ...pending.map((e) => JSON.stringify(e))).ltrim(this.#keys.events, -EVENT_LOG_SIZE, -1).exec();
      }
      const raw = await cmd.lrange(this.#keys.events, -EVENT_LOG_SIZE, -1);
      const list: ProxyEvent[] = [];
      let bad = 0;
      for (const r of raw) {
        const e = parseEvent(r);
        if (e === null) bad++;
        else list.push(e);
      }
      if (bad > 0) this.#log.warn({ entries: bad }, `cluster: ${bad} entries of the shared event history are not events: ignored`);
      this.#mirror = list;
    } catch {
      this.#link.countError();
    }
  }
}
