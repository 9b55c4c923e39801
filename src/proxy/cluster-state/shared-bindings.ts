/**
 * Source-affinity bindings shared by the instances of a cluster (SPEC 9), in Redis: one key per (pool, client IP)
 * holding the server's name, with the pool's affinity TTL as a Redis TTL (never compared with any instance's
 * clock). The first instance to bind a client wins, atomically: `claim` sets the key only when absent and answers
 * the binding in force either way, so a client whose two ports reach lb1 and lb2 at the same instant meets one
 * server. Redis is the authority while it answers; what an instance decides alone (Redis away or slow) is written
 * back when it answers again, first writer winning, and the loser adopts the winner for later connections.
 */
import type { Logger } from '../../common/logger.ts';
import type { ClusterKeys } from './keys.ts';
import type { RedisLink } from './redis-link.ts';

/** GET, or SET when absent (ARGV[1] '' = only look); a found binding's TTL restarts. Answers the binding in force. */
const CLAIM = `local v = redis.call('GET', KEYS[1])
if v then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return v end
if ARGV[1] == '' then return false end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]`;

/** Replaces the binding only if it is still ARGV[1] ('' = absent): a rebind away from a server unusable here. */
const REPLACE = `local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[3]) return v end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return ARGV[2]`;

/** Bindings decided alone while Redis was away, kept for the write-back; beyond this the oldest are forgotten. */
const MAX_PENDING = 100_000;

/** Adopts a winner named by Redis into the local table of `pool` (the instance's side, see SharedSourceAffinity). */
export type Adopt = (pool: string, ip: string, server: string) => void;
/** The server `ip` is bound to locally in `pool`, if any (conflict detection). */
export type LocalBinding = (pool: string, ip: string) => string | undefined;
/** Every live local binding, per pool with its TTL (written back after Redis lost them in a restart). */
export type AllLocal = () => Array<{ pool: string; ttl: number; entries: Array<[string, string]> }>;

interface Pending {
  pool: string;
  ip: string;
  server: string;
  ttl: number;
}

export class SharedBindings {
  readonly #link: RedisLink;
  readonly #keys: ClusterKeys;
  readonly #log: Logger;
  readonly #pending = new Map<string, Pending>();
  #adopt: Adopt = () => {};
  #local: LocalBinding = () => undefined;
  #all: AllLocal = () => [];
  #connectedBefore = false;
  #conflicts = 0;
  #writtenBack = 0;
  #resyncing = false;
  #inFlight = 0;

  constructor(link: RedisLink, keys: ClusterKeys, log: Logger) {
    this.#link = link;
    this.#keys = keys;
    this.#log = log;
    link.cmd.defineCommand('lpxClaim', { numberOfKeys: 1, lua: CLAIM });
    link.cmd.defineCommand('lpxReplace', { numberOfKeys: 1, lua: REPLACE });
    link.onUp(() => {
      // Back after an outage: Redis may have restarted empty, so every live local binding is offered again (set
      // only where absent); a Redis that kept its keys keeps its bindings, and this instance adopts them.
      if (this.#connectedBefore) for (const p of this.#all()) for (const [ip, server] of p.entries) this.decidedAlone(p.pool, ip, server, p.ttl, false);
      this.#connectedBefore = true;
      void this.resync();
    });
  }

  /** Wires the runtime in (the ClusterState service, once the app runs). */
  attach(adopt: Adopt, local: LocalBinding, all: AllLocal): void {
    this.#adopt = adopt;
    this.#local = local;
    this.#all = all;
  }

  get usable(): boolean {
    return this.#link.isUp;
  }

  get conflicts(): number {
    return this.#conflicts;
  }
  /** Bindings decided alone not yet settled with Redis (waiting, or being written back). */
  get pending(): number {
    return this.#pending.size + this.#inFlight;
  }
  get writtenBack(): number {
    return this.#writtenBack;
  }

  /** The binding in force for `ip` after proposing `server` ('' = none to propose): Redis decides. */
  claim(pool: string, ip: string, server: string, ttl: number): Promise<string | null> {
    return (this.#link.cmd as unknown as Scripts).lpxClaim(this.#keys.binding(pool, ip), server, String(ttl));
  }

  /** Rebinds away from `from` ('' = absent) to `to`, unless another instance rebound first: answers the winner. */
  replace(pool: string, ip: string, from: string, to: string, ttl: number): Promise<string | null> {
    return (this.#link.cmd as unknown as Scripts).lpxReplace(this.#keys.binding(pool, ip), from, to, String(ttl));
  }

  /** A binding's last connection closed: its TTL restarts in Redis too (not awaited; a failure only counts). */
  touch(pool: string, ip: string, ttl: number): void {
    if (!this.#link.isUp) return;
    this.#link.cmd.pexpire(this.#keys.binding(pool, ip), ttl).catch(() => this.#link.countError());
  }

  /** Keeps bindings with open connections alive in Redis (a license held for hours outlives the TTL). */
  refresh(pool: string, ips: readonly string[], ttl: number): void {
    if (!this.#link.isUp || ips.length === 0) return;
    const p = this.#link.cmd.pipeline();
    for (const ip of ips) p.pexpire(this.#keys.binding(pool, ip), ttl);
    p.exec().catch(() => this.#link.countError());
  }

  /** Decided alone (Redis away): written back, first writer winning, when Redis answers again. */
  decidedAlone(pool: string, ip: string, server: string, ttl: number, replace = true): void {
    const key = `${pool}\0${ip}`;
    if (!replace && this.#pending.has(key)) return;
    this.#pending.delete(key);
    this.#pending.set(key, { pool, ip, server, ttl });
    if (this.#pending.size > MAX_PENDING) this.#pending.delete(this.#pending.keys().next().value as string);
  }

  /**
   * Redis answered `winner` for a binding this instance holds as `mine` (a late answer, a write-back, a rebind):
   * the winner is adopted for the client's later connections; connections already open stay where they are.
   */
  settle(pool: string, ip: string, winner: string | null, mine: string | undefined): void {
    if (winner === null || mine === undefined || winner === mine) return;
    this.#conflicts++;
    this.#log.warn({ pool, client: ip, kept: winner, dropped: mine }, `cluster: binding conflict for ${ip} in pool ${pool}: ${winner} bound first (by another instance), ${mine} dropped; later connections go to ${winner}`);
    this.#adopt(pool, ip, winner);
  }

  /** Redis is back: every binding decided alone is written back; where another instance bound first, its binding wins. */
  async resync(): Promise<void> {
    if (this.#resyncing || this.#pending.size === 0) return;
    this.#resyncing = true;
    try {
      while (this.#pending.size > 0 && this.#link.isUp) {
        const batch = [...this.#pending.values()].slice(0, 500);
        for (const p of batch) this.#pending.delete(`${p.pool}\0${p.ip}`);
        this.#inFlight = batch.length;
        const answers = await Promise.all(batch.map((p) => this.claim(p.pool, p.ip, p.server, p.ttl).catch(() => undefined)));
        this.#inFlight = 0;
        batch.forEach((p, i) => {
          const winner = answers[i];
          if (winner === undefined) {
            this.#link.countError();
            return this.decidedAlone(p.pool, p.ip, p.server, p.ttl);
          }
          this.#writtenBack++;
          this.settle(p.pool, p.ip, winner, this.#local(p.pool, p.ip) ?? p.server);
        });
      }
    } finally {
      this.#resyncing = false;
    }
  }
}

interface Scripts {
  lpxClaim(key: string, server: string, ttl: string): Promise<string | null>;
  lpxReplace(key: string, from: string, to: string, ttl: string): Promise<string | null>;
}
