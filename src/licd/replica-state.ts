import type { Logger } from '../common/logger.ts';
import type { ClientSession } from './client-session.ts';
import { DetachedSession } from './detached-session.ts';
import type { FeaturePool, Holder } from './feature-pool.ts';
import { Grant, TokenReservation, type Identity } from './grant.ts';
import { HandleMap, publicHandle, sameSecret } from './handles.ts';
import type { QueueRecord, ReplicatedOp, SessionRecord } from './peer-messages.ts';
import { TokenSession } from './token-session.ts';

/**
 * The least time a client gets to RESUME after each master change, even when its session's deadline (set after an
 * earlier change) is nearer: a client that resumed just before its master died may find the `res` op lost with it.
 */
const RESUME_GRACE_MS = 5_000;

/** What the replica state needs of its daemon: its pools (retired ones too), its live grants and sessions. */
export interface ReplicaStore {
  readonly logger: Logger;
  readonly licensePort: number;
  /** A pool by name, retired or not (a replicated session may hold a feature a reload removed). */
  knownPool(name: string): FeaturePool | undefined;
  allPools(): Iterable<FeaturePool>;
  /** Live grants by handle (shared with the daemon: RESUME adds to it, detaching removes from it). */
  readonly grants: HandleMap<Grant>;
  liveSessions(): Iterable<ClientSession>;
}

/**
 * The replicated half of a daemon in a redundant set (SPEC 4.3): sessions held without a connection here
 * (*detached*: a follower's copy of the master's sessions, or a failed master's leftovers on the new one), the
 * follower's copy of the master's queue, and the moves between live and detached (RESUME, stepping down).
 * Detached sessions hold their seats and tokens in the pools like live grants, so every count includes them once.
 */
export class ReplicaState {
  readonly #store: ReplicaStore;
  readonly #detached = new HandleMap<DetachedSession>();
  /** A follower's copy of the master's queue (status only). */
  #queue = new Map<string, QueueRecord>();

  constructor(store: ReplicaStore) {
    this.#store = store;
  }

  /** The follower's copy of the master's queue, for status. */
  queueRecords(): IterableIterator<QueueRecord> {
    return this.#queue.values();
  }

  /** Every session and queue entry this member holds, live or detached (a snapshot for a peer). */
  snapshot(): { sessions: SessionRecord[]; queue: QueueRecord[] } {
    const tok = new Map<string, Record<string, number>>();
    const pools = [...this.#store.allPools()];
    for (const pool of pools) {
      if (pool.config.kind !== 'tokens') continue;
      for (const [holder, n] of pool.holders()) {
        const h = holder.describe().handle;
        if (!h) continue;
        const rec = tok.get(h) ?? {};
        rec[pool.name] = (rec[pool.name] ?? 0) + n;
        tok.set(h, rec);
      }
    }
    const sessions: SessionRecord[] = [];
    const queue: QueueRecord[] = [];
    for (const pool of pools) {
      if (pool.config.kind === 'tokens') continue;
      for (const [holder, n] of pool.holders()) {
        const i = holder.describe();
        const r: SessionRecord = { h: i.handle, f: pool.name, n, v: i.version || pool.config.version, u: i.user, host: i.host, d: i.display, s: i.start, tok: tok.get(i.handle) ?? {} };
        if (holder instanceof DetachedSession && holder.expiresAt !== null) r.x = holder.expiresAt;
        const req = holder instanceof DetachedSession || holder instanceof Grant ? holder.req : null;
        if (req !== null) r.rq = req;
        if ((holder instanceof DetachedSession || holder instanceof Grant) && !holder.resumable) r.nr = 1;
        sessions.push(r);
      }
      for (const w of pool.waiters()) {
        const i = w.describe();
        if (w.id) queue.push({ q: w.id, f: pool.name, n: w.count, u: i.user, host: i.host, d: i.display, s: i.start });
      }
    }
    for (const q of this.#queue.values()) queue.push(q);
    return { sessions, queue };
  }

  /** Replaces the replicated state with a peer's snapshot (never called while serving). */
  load(sessions: SessionRecord[], queue: QueueRecord[]): void {
    if (this.#store.grants.size > 0) this.#detachLive();
    for (const d of this.#detached.values()) d.end();
    this.#detached.clear();
    for (const r of sessions) this.#addDetached(r);
    this.#queue = new Map(queue.map((q) => [q.q, q]));
  }

  apply(op: ReplicatedOp): void {
    switch (op.op) {
      case 'grant':
        return this.#addDetached(op.r);
      case 'end': {
        const d = this.#detached.get(op.h);
        if (d) {
          this.#detached.delete(op.h);
          d.end();
        }
        return;
      }
      case 'res': {
        const d = this.#detached.get(op.h);
        if (d) d.expiresAt = null;
        return;
      }
      case 'tok': {
        const d = this.#detached.get(op.h);
        const pool = this.#store.knownPool(op.f);
        if (d && pool) d.tokens(pool, op.n < 0 ? -Math.min(-op.n, pool.heldBy(d)) : op.n);
        return;
      }
      case 'qadd':
        this.#queue.set(op.r.q, op.r);
        return;
      case 'qdel':
        this.#queue.delete(op.q);
        return;
    }
  }

  /**
   * This member now serves: a detached session must be resumed within `window` ms of the first master change that
   * found it without a client (its deadline travels in the replicated state), and within at least RESUME_GRACE_MS
   * (or `window`, if shorter) of this one, or it is freed. Master changes in a row thus do not keep a session whose
   * client is gone counted for ever.
   */
  startServing(window: number): void {
    const now = Date.now();
    const fresh = now + window;
    const grace = now + Math.min(window, RESUME_GRACE_MS);
    for (const d of this.#detached.values()) d.expiresAt = d.expiresAt === null ? fresh : Math.max(d.expiresAt, grace);
    this.#queue.clear();
  }

  /**
   * This member stopped serving: live grants become detached (nothing is freed, their clients may resume), except
   * `resume=no` ones, whose connections close now and never come back: those are freed and returned.
   */
  stopServing(): DetachedSession[] {
    this.#detachLive();
    this.#queue.clear();
    return this.dropUnresumable();
  }

  /**
   * Frees every detached `resume=no` session (PROTOCOL.md "CHECKOUT"): its client's connection was to another member
   * or to this one before it stopped serving, and that client never RESUMEs, so keeping it for resume_window would
   * only strand its seats. Called when this member starts serving, stops serving, or loses the master it followed.
   * Returns them, so that a serving member replicates their `end`.
   */
  dropUnresumable(): DetachedSession[] {
    const out: DetachedSession[] = [];
    for (const d of [...this.#detached.values()]) {
      if (d.resumable) continue;
      this.#detached.delete(d.handle);
      d.end();
      out.push(d);
    }
    return out;
  }

  /**
   * A live grant whose connection ended without QUIT becomes a detached session that waits until `expiresAt` for a
   * RESUME (nothing is freed now; the followers already hold it detached). Serving member only.
   */
  holdDisconnected(g: Grant, expiresAt: number): boolean {
    if (!g.resumable) return false;
    this.#detachGrant(g).expiresAt = expiresAt;
    return true;
  }

  /** Frees the detached sessions whose resume window has passed (serving member only); returns their handles. */
  expire(now: number): DetachedSession[] {
    const out: DetachedSession[] = [];
    for (const d of [...this.#detached.values()]) {
      if (d.expiresAt !== null && d.expiresAt <= now) {
        this.#detached.delete(d.handle);
        d.end();
        out.push(d);
      }
    }
    return out;
  }

  /**
   * Re-attaches a replicated session to `owner` (RESUME); undefined when the presented handle is not a session
   * here. Only the full handle finds it (HandleMap): a public id read from STATUS does not.
   */
  resume(handle: string, owner: { touch(): void }, port: number): Grant | undefined {
    let d = this.#detached.get(handle);
    // A `resume=no` session cannot be resumed: it answers like an unknown handle (a member that serves frees it).
    if (d && !d.resumable) return undefined;
    if (!d) {
      // The handle is still held by another connection here (the client's old one, not yet seen closing): take it over.
      const live = this.#store.grants.get(handle);
      if (!live || live.ended || !live.resumable) return undefined;
      (live.owner as ClientSession).detachGrant(handle);
      d = this.#detachGrant(live);
    }
    return this.#attach(d, owner, port);
  }

  /**
   * Re-attaches the detached session a replayed CHECKOUT names by its request id (PROTOCOL.md "CHECKOUT"): same
   * feature, count, user and host, and the same `req`, compared in constant time with every candidate (a wrong id
   * learns nothing of which sessions exist). Only detached sessions: one still held by a live connection is not
   * taken (the caller answers a fresh checkout). Undefined when none matches.
   */
  reclaim(req: string, pool: FeaturePool, count: number, identity: Identity, owner: { touch(): void }, port: number): Grant | undefined {
    let found: DetachedSession | undefined;
    for (const d of this.#detached.values()) {
      if (d.req === null || d.seatPool !== pool || d.count !== count || d.identity.user !== identity.user || d.identity.host !== identity.host) continue;
      if (sameSecret(d.req, req) && !found) found = d;
    }
    return found && this.#attach(found, owner, port);
  }

  #attach(d: DetachedSession, owner: { touch(): void }, port: number): Grant {
    this.#detached.delete(d.handle);
    const g = new Grant({ handle: d.handle, pool: d.seatPool, count: d.count, version: d.version, identity: d.identity, port, owner, start: d.start, req: d.req, resumable: d.resumable });
    d.seatPool.transfer(d, g);
    for (const p of d.tokenPools) {
      if (p.heldBy(d) === 0) continue;
      g.reservation ??= new TokenReservation(g);
      p.transfer(d, g.reservation);
      g.reservation.pools.push(p);
    }
    d.adopt();
    this.#store.grants.set(g);
    return g;
  }

  /** Moves a live grant's seats and tokens to a detached session (nothing is freed, no queue is served). */
  #detachGrant(g: Grant): DetachedSession {
    const d = new DetachedSession({ handle: g.handle, seatPool: g.pool, count: g.count, version: g.version, identity: g.identity, start: g.start, port: g.port, req: g.req, resumable: g.resumable });
    g.pool.transfer(g, d);
    const move = (pool: FeaturePool, from: Holder) => {
      if (pool.transfer(from, d) > 0 && !d.tokenPools.includes(pool)) d.tokenPools.push(pool);
    };
    for (const t of g.tokenHolders()) if (t instanceof TokenSession) for (const p of t.pools) move(p, t);
    const res = g.reservation;
    if (res) for (const p of res.pools) move(p, res);
    if (this.#store.grants.holds(g)) this.#store.grants.delete(g.handle);
    g.abandon('session detached');
    const old = this.#detached.get(g.handle);
    if (old) old.end();
    this.#detached.set(d);
    return d;
  }

  #detachLive(): void {
    for (const s of this.#store.liveSessions()) for (const g of s.detachAll()) this.#detachGrant(g);
    for (const g of [...this.#store.grants.values()]) this.#detachGrant(g);
  }

  #addDetached(r: SessionRecord): void {
    const pool = this.#store.knownPool(r.f);
    if (!pool) {
      this.#store.logger.warn({ event: 'replica-unknown-feature', feature: r.f, handle: publicHandle(r.h) }, `replicated session ${publicHandle(r.h)} of unknown feature ${r.f} ignored (license files differ)`);
      return;
    }
    if (this.#store.grants.has(r.h)) return;
    this.#detached.get(r.h)?.end();
    const d = new DetachedSession({
      handle: r.h,
      seatPool: pool,
      count: r.n,
      version: r.v,
      identity: { user: r.u, host: r.host, display: r.d },
      start: r.s,
      port: this.#store.licensePort,
      req: r.rq ?? null,
      resumable: r.nr !== 1,
    });
    d.expiresAt = r.x ?? null;
    pool.take(d, r.n);
    for (const [f, n] of Object.entries(r.tok)) {
      const tp = this.#store.knownPool(f);
      if (tp) d.tokens(tp, n);
    }
    this.#detached.set(d);
  }
}
