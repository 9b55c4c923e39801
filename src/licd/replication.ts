import type { Logger } from '../common/logger.ts';
import type { PeerLink } from './peer-link.ts';
import type { PeerMessage, QueueRecord, ReplicatedOp, SessionRecord } from './peer-messages.ts';

/** What replication needs of its daemon: the replicated state (ReplicaState behind LicenseServer). */
export interface ReplicaSource {
  /** Every session and queue entry this member holds, live or detached. */
  replicaSnapshot(): { sessions: SessionRecord[]; queue: QueueRecord[] };
  replicaApply(op: ReplicatedOp): void;
}

interface Follower {
  /** Last acknowledged seq of the current term; -1 while its snapshot is in flight. */
  acked: number;
}

interface Pending {
  seq: number;
  done(ok: boolean): void;
}

/** A snapshot being received: to follow its sender, or to take a voter's fresher state before serving. */
export interface IncomingSnapshot {
  link: PeerLink;
  term: number;
  seq: number;
  n: number;
  sessions: SessionRecord[];
  queue: QueueRecord[];
  purpose: 'follow' | 'fetch';
}

/**
 * Replication of a redundant set (PROTOCOL.md "Replication"): the versioned state `(term, seq)`; on the master, the
 * followers, the numbered op stream and the changes waiting for their acknowledgement (a triad needs one follower,
 * a pair its linked backup); on a follower, snapshots assembled line by line and ops applied strictly in order.
 * Who is master and whom to follow is the election's business (redundancy.ts); this class moves the state.
 */
export class Replication {
  readonly #source: ReplicaSource;
  readonly #log: Logger;
  readonly #triad: boolean;
  /** Term of the state this member holds (the term of its master), and the last op applied in it. */
  term = 0;
  seq = 0;
  readonly #followers = new Map<PeerLink, Follower>();
  readonly #pending: Pending[] = [];
  #snapIn: IncomingSnapshot | null = null;

  constructor(source: ReplicaSource, logger: Logger, triad: boolean) {
    this.#source = source;
    this.#log = logger;
    this.#triad = triad;
  }

  // ---- master side ----

  /** Starts a new term with no follower (this member begins serving). */
  newTerm(term: number): void {
    this.term = term;
    this.seq = 0;
    this.#followers.clear();
  }

  /**
   * Streams one change to the followers. With `done`, calls it once the change is acknowledged as SPEC 4.3 asks
   * (possibly synchronously), or with false when it cannot be.
   */
  replicate(op: ReplicatedOp, done?: (ok: boolean) => void): void {
    const seq = ++this.seq;
    const m = { t: 'op', term: this.term, seq, ...op } as PeerMessage;
    for (const link of this.#followers.keys()) link.send(m);
    if (done) {
      this.#pending.push({ seq, done });
      this.#settle();
    }
  }

  /** A member follows this one: it gets the whole state, then every op. */
  addFollower(link: PeerLink): void {
    this.#followers.set(link, { acked: -1 });
    this.sendSnapshot(link);
  }

  removeFollower(link: PeerLink): void {
    if (this.#followers.delete(link)) this.#settle();
  }

  hasFollower(link: PeerLink): boolean {
    return this.#followers.has(link);
  }

  /** The follower on `link` has loaded the snapshot (it can take over without losing anything). */
  isSynced(link: PeerLink): boolean {
    return (this.#followers.get(link)?.acked ?? -1) >= 0;
  }

  /** Some follower is synced: a triad master can complete a grant. */
  get anySynced(): boolean {
    for (const f of this.#followers.values()) if (f.acked >= 0) return true;
    return false;
  }

  /** Stepping down: no follower any more, and every change waiting for acknowledgement fails. */
  stopLeading(): void {
    this.#followers.clear();
    const pending = this.#pending.splice(0);
    for (const p of pending) p.done(false);
  }

  sendSnapshot(link: PeerLink): void {
    const { sessions, queue } = this.#source.replicaSnapshot();
    link.send({ t: 'snap', term: this.term, seq: this.seq, n: sessions.length + queue.length });
    for (const r of sessions) link.send({ t: 'sess', r });
    for (const r of queue) link.send({ t: 'qent', r });
    link.send({ t: 'snapend' });
  }

  onAck(link: PeerLink, term: number, seq: number): void {
    const f = this.#followers.get(link);
    if (!f || term !== this.term) return;
    if (seq > f.acked) f.acked = seq;
    this.#settle();
  }

  /** Completes the changes that are acknowledged as SPEC 4.3 asks, in order; fails them all when that cannot happen. */
  #settle(): void {
    if (this.#triad && this.#pending.length > 0 && this.#followers.size === 0) {
      const failed = this.#pending.splice(0);
      for (const p of failed) p.done(false);
      return;
    }
    while (this.#pending.length > 0) {
      const p = this.#pending[0]!;
      let acked: boolean;
      if (this.#triad) {
        acked = false;
        for (const f of this.#followers.values()) if (f.acked >= p.seq) acked = true;
      } else {
        acked = true;
        for (const f of this.#followers.values()) if (f.acked < p.seq) acked = false;
      }
      if (!acked) return;
      this.#pending.shift();
      p.done(true);
    }
  }

  // ---- follower side ----

  /** A snapshot starts on `link`. */
  beginSnapshot(link: PeerLink, m: { term: number; seq: number; n: number }, purpose: 'follow' | 'fetch'): void {
    this.#snapIn = { link, term: m.term, seq: m.seq, n: m.n, sessions: [], queue: [], purpose };
  }

  /** Forgets a snapshot in flight (from `link`, or any). */
  dropSnapshot(link?: PeerLink): void {
    if (!link || this.#snapIn?.link === link) this.#snapIn = null;
  }

  onSnapEntry(link: PeerLink, m: { t: 'sess'; r: SessionRecord } | { t: 'qent'; r: QueueRecord }): void {
    const s = this.#snapIn;
    if (!s || s.link !== link) return;
    if (s.sessions.length + s.queue.length >= s.n) return this.#protocolError(link, 'snapshot longer than announced');
    if (m.t === 'sess') s.sessions.push(m.r);
    else s.queue.push(m.r);
  }

  /** The snapshot from `link` is complete: returns it (the caller loads it, then `adopt`s it), or null. */
  endSnapshot(link: PeerLink): IncomingSnapshot | null {
    const s = this.#snapIn;
    if (!s || s.link !== link) return null;
    this.#snapIn = null;
    if (s.sessions.length + s.queue.length !== s.n) {
      this.#protocolError(link, 'snapshot shorter than announced');
      return null;
    }
    return s;
  }

  /** The state loaded from a snapshot is this member's now. */
  adopt(s: { term: number; seq: number }): void {
    this.term = s.term;
    this.seq = s.seq;
  }

  /**
   * This member's state contains every change of `s`: a newer term, or the same term (the same master's ops, applied
   * in order) at least as far.
   */
  holdsAtLeast(s: { term: number; seq: number }): boolean {
    return this.term > s.term || (this.term === s.term && this.seq >= s.seq);
  }

  /** Applies the next op of the master this member follows and acknowledges it; a gap closes the link. */
  applyOp(link: PeerLink, m: { t: 'op'; term: number; seq: number } & ReplicatedOp): void {
    if (m.seq !== this.seq + 1) return this.#protocolError(link, `replication gap: op ${m.seq} after ${this.seq}`);
    const { t: _t, term: _term, seq: _seq, ...op } = m;
    this.#source.replicaApply(op as ReplicatedOp);
    this.seq = m.seq;
    link.send({ t: 'ack', term: m.term, seq: m.seq });
  }

  #protocolError(link: PeerLink, what: string): void {
    this.#log.warn({ event: 'peer-protocol', peer: link.name, what }, `peer ${link.name}: ${what}; link closed`);
    link.close(what);
  }
}
