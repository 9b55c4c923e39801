/**
 * Admin state shared by a cluster (SPEC 9): drain / maint / weight set through the admin API of any instance are
 * kept in one Redis hash per cluster and announced on its notify channel; every instance re-reads the hash on the
 * announcement and whenever its link to Redis comes back, so a change is in force everywhere within moments, and
 * an instance that missed announcements catches up. Entries for a pool or server this instance's configuration
 * lacks (an older configuration) are ignored and logged once.
 */
import type { Logger } from '../../common/logger.ts';
import { printable } from '../../common/printable.ts';
import type { ProxyRuntime } from '../runtime.ts';
import type { AdminChange } from './cluster-view.ts';
import type { ClusterKeys } from './keys.ts';
import { parseNotice } from './notify.ts';
import type { RedisLink } from './redis-link.ts';

const STATES = new Set(['ready', 'drain', 'maint']);
/** The hash is also re-read this often: a lost announcement (subscriber reconnecting) costs at most this long. */
const REREAD_MS = 1_000;

export class SharedAdmin {
  readonly #link: RedisLink;
  readonly #keys: ClusterKeys;
  readonly #instance: string;
  readonly #log: Logger;
  #rt: ProxyRuntime | null = null;
  /** Changes made here while Redis was away: written before the hash is re-read, so they are not undone. */
  readonly #pending = new Map<string, string>();
  /** Entries already reported as ignored (logged once each). */
  readonly #ignored = new Set<string>();
  #reading: Promise<void> | null = null;
  #again = false;
  #timer: NodeJS.Timeout | null = null;
  /** Bumped by every change made here: a hash read before it must not undo it (read again instead). */
  #localSeq = 0;

  constructor(link: RedisLink, keys: ClusterKeys, instance: string, log: Logger) {
    this.#link = link;
    this.#keys = keys;
    this.#instance = instance;
    this.#log = log;
  }

  attach(rt: ProxyRuntime): void {
    this.#rt = rt;
    const sub = this.#link.sub;
    sub.on('message', (channel: string, text: string) => {
      if (channel !== this.#keys.notify) return;
      const n = parseNotice(text);
      if (n?.t === 'admin' && n.from !== this.#instance) void this.ready();
    });
    sub.subscribe(this.#keys.notify).catch(() => {});
    this.#link.onUp(() => void this.ready());
    this.#timer = setInterval(() => {
      if (this.#link.isUp) void this.ready();
    }, REREAD_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /** Shares a change made through this instance's API. */
  publish(pool: string, server: string, change: AdminChange): void {
    const [field, value] = 'state' in change ? [`state:${pool}/${server}`, change.state] : [`weight:${pool}/${server}`, String(change.weight)];
    this.#localSeq++;
    if (!this.#link.isUp) {
      this.#pending.set(field, value);
      return;
    }
    this.#link.cmd
      .multi()
      .hset(this.#keys.admin, field, value)
      .publish(this.#keys.notify, JSON.stringify({ t: 'admin', from: this.#instance }))
      .exec()
      .catch(() => {
        this.#link.countError();
        this.#pending.set(field, value);
      });
  }

  /** Writes what was set here while Redis was away, then applies the hash (coalesced: one read at a time). */
  ready(): Promise<void> {
    if (this.#reading) {
      this.#again = true;
      return this.#reading;
    }
    this.#reading = (async () => {
      do {
        this.#again = false;
        await this.#read();
      } while (this.#again);
    })().finally(() => {
      this.#reading = null;
    });
    return this.#reading;
  }

  async #read(): Promise<void> {
    const cmd = this.#link.cmd;
    try {
      if (this.#pending.size > 0) {
        const fields = Object.fromEntries(this.#pending);
        this.#pending.clear();
        await cmd.multi().hset(this.#keys.admin, fields).publish(this.#keys.notify, JSON.stringify({ t: 'admin', from: this.#instance })).exec();
      }
      const seq = this.#localSeq;
      const hash = await cmd.hgetall(this.#keys.admin);
      if (seq !== this.#localSeq) this.#again = true;
      else this.#apply(hash);
    } catch {
      this.#link.countError();
    }
  }

  #apply(hash: Record<string, string>): void {
    const rt = this.#rt;
    if (rt === null) return;
    for (const [field, value] of Object.entries(hash)) {
      const m = /^(state|weight):([^/]+)\/(.+)$/.exec(field);
      const s = m ? rt.server(m[2]!, m[3]!) : undefined;
      if (!m || s === undefined) {
        this.#ignore(field, m ? `no server ${m[3]} in pool ${m[2]} in this configuration` : 'not an admin entry');
        continue;
      }
      const reason = 'admin API (cluster)';
      if (m[1] === 'state') {
        if (STATES.has(value)) s.setAdminState(value as 'ready' | 'drain' | 'maint', reason);
        else this.#ignore(field, 'not ready, drain or maint');
        continue;
      }
      const w = Number(value);
      if (Number.isInteger(w) && w >= 0 && w <= 256) s.setWeight(w, reason);
      else this.#ignore(field, 'not a weight 0..256');
    }
  }

  #ignore(field: string, why: string): void {
    if (this.#ignored.has(field) || this.#ignored.size > 1000) return;
    this.#ignored.add(field);
    const f = printable(field.slice(0, 200));
    this.#log.warn({ field: f }, `cluster: shared admin state "${f}" ignored: ${why}`);
  }
}
