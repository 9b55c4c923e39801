import type { Logger } from '../common/logger.ts';
import type { LicdRedundancyConfig } from '../config/licd-config.ts';
import { Election, candidateOf } from './election.ts';
import type { PeerLink } from './peer-link.ts';
import { PeerLinks, type RedundancyPeerStatus } from './peer-links.ts';
import type { MemberInfo, PeerMessage, PeerRole, QueueRecord, ReplicatedOp, SessionRecord } from './peer-messages.ts';
import { Replication, type ReplicaSource } from './replication.ts';
import { probeWitness, type WitnessResult } from './witness-probe.ts';

export type { RedundancyPeerStatus } from './peer-links.ts';

/** What the redundancy layer needs of its daemon: the replicated state, and serving on or off. */
export interface ReplicaHost extends ReplicaSource {
  readonly name: string;
  readonly logger: Logger;
  readonly licensePort: number;
  readonly tokensPort: number;
  /** Replaces the replicated state (never called while serving). */
  replicaLoad(sessions: SessionRecord[], queue: QueueRecord[]): void;
  /** This member now serves: detached sessions start their resume_window. */
  startServing(): void;
  /** This member stopped serving: live sessions become detached (nothing freed), client connections close. */
  stopServing(reason: string): void;
  /** This member stopped following its master (link lost, master stopped serving): `resume=no` sessions are freed. */
  lostMaster(): void;
}

export type RedundancyState = 'paired and synced' | 'peer not available' | 'not synced' | 'recovering';

export interface RedundancyStatus {
  mode: 'backup' | 'triad';
  order: number;
  state: RedundancyState;
  role: PeerRole;
  term: number;
  seq: number;
  /** The member that serves, as far as this one knows; null when none does. */
  master: string | null;
  peers: RedundancyPeerStatus[];
}

/**
 * One member of a backup pair or triad (SPEC 4.3): who serves, decided on every event. The whole design and its
 * trade-offs are in PROTOCOL.md ("Redundancy"). The parts:
 *
 * - `peer-links.ts`: the peer port, admission, dialing, one link per member, silent links dropped.
 * - `election.ts`: one candidacy and its votes (the candidate is the lowest `order` among linked members; triad:
 *   with quorum); a voter promises the term, stops following any other master, and hands over its state if fresher.
 * - `replication.ts`: the versioned state, the op stream and its acknowledgements, snapshots.
 * - here: the role (waiting, candidate, recovering, following, serving) and its changes, the votes this member
 *   gives, and the rules of a backup pair alone (`#maybeServeAlone`).
 */
export class Redundancy {
  readonly #cfg: LicdRedundancyConfig;
  readonly #host: ReplicaHost;
  readonly #log: Logger;
  readonly #links: PeerLinks;
  readonly #rep: Replication;
  #role: PeerRole = 'waiting';
  /** Highest term promised (voted for, followed or served); older masters are refused. */
  #voted = 0;
  #master: string | null = null;
  #followLink: PeerLink | null = null;
  #election: Election | null = null;
  #nextElection = 0;
  #followDeadline = 0;
  /** Backup pair: when this member last heard its peer (start-up counts as heard). */
  #lastPeerHeard = Date.now();
  #lastTick = Date.now();
  #lastHb = 0;
  /** The pair peer's license port, learned from its handshake (a member restarted alone has not learned it). */
  #learnedLicensePort = 0;
  #witness: { result: WitnessResult; at: number } | null = null;
  #witnessRunning = false;
  #witnessLogged: WitnessResult | null = null;
  #timer: NodeJS.Timeout | null = null;
  #started = false;
  #stopped = false;

  constructor(cfg: LicdRedundancyConfig, host: ReplicaHost, logger: Logger) {
    this.#cfg = cfg;
    this.#host = host;
    this.#log = logger;
    this.#rep = new Replication(host, logger, cfg.mode === 'triad');
    this.#links = new PeerLinks(cfg, logger, {
      onReady: (link) => this.#onReady(link),
      onMessage: (link, m) => this.#onMessage(link, m),
      onClose: (link, reason) => this.#onClose(link, reason),
    });
  }

  get mode(): 'backup' | 'triad' {
    return this.#cfg.mode;
  }

  get role(): PeerRole {
    return this.#role;
  }

  get #self(): MemberInfo {
    return this.#links.self;
  }

  /** Opens the peer port; resolves its actual port. */
  async start(host: string, port: number, self: Omit<MemberInfo, 'addr' | 'boot'>): Promise<number> {
    const bound = await this.#links.start(host, port, self);
    this.#started = true;
    this.#lastPeerHeard = Date.now();
    this.#lastTick = Date.now();
    const every = Math.max(5, Math.min(250, Math.floor(this.#cfg.heartbeat / 4)));
    this.#timer = setInterval(() => this.#tick(), every);
    this.#timer.unref();
    this.#tick();
    return bound;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#links.stop();
  }

  // ---- what the daemon asks ----

  /** Serving and able to complete a grant: the member that shows (MASTER). */
  get effective(): boolean {
    if (this.#role !== 'serving') return false;
    if (this.#cfg.mode === 'backup') return true;
    return this.#rep.anySynced;
  }

  /** UP in status: serving, or following a serving member. */
  get up(): boolean {
    return this.effective || this.#role === 'following';
  }

  /**
   * Null when this member may grant; otherwise the ERR line to answer (CHECKOUT, RESUME, TOKENS). A backup-pair
   * member that finds its event loop was frozen for 2 heartbeats (SIGSTOP, swap storm) stops serving here, before
   * it could grant on a state its peer may have moved past.
   */
  gate(): string | null {
    if (this.#role === 'serving' && this.#cfg.mode === 'backup' && Date.now() - this.#lastTick > 2 * this.#cfg.heartbeat) {
      this.#stepDown(`event loop frozen for ${Date.now() - this.#lastTick}ms`);
    }
    if (this.effective) return null;
    const master = this.#knownMaster();
    if (master && master !== this.#self.name) return `ERR NOT_MASTER master=${master}\n`;
    return 'ERR NO_QUORUM\n';
  }

  /**
   * Streams one change to the followers. With `done`, calls it once the change is acknowledged as SPEC 4.3 asks
   * (possibly synchronously), or with false when it cannot be (quorum lost, stepped down).
   */
  replicate(op: ReplicatedOp, done?: (ok: boolean) => void): void {
    if (this.#role !== 'serving') {
      done?.(false);
      return;
    }
    this.#rep.replicate(op, done);
  }

  status(): RedundancyStatus {
    return {
      mode: this.#cfg.mode,
      order: this.#cfg.order,
      state: this.#state(),
      role: this.#role,
      term: this.#rep.term,
      seq: this.#rep.seq,
      master: this.effective ? this.#self.name : this.#role === 'following' ? this.#master : null,
      peers: this.#peerStatus(),
    };
  }

  /** The links' view of each peer; the serving member adds whether each peer is in sync with it. */
  #peerStatus(): RedundancyPeerStatus[] {
    const peers = this.#links.status();
    if (this.#role !== 'serving') return peers;
    const byName = new Map<string, PeerLink>();
    for (const l of this.#links.active()) byName.set(l.name, l);
    for (const p of peers) {
      const l = p.name === null ? undefined : byName.get(p.name);
      p.synced = l !== undefined && p.connected && this.#rep.isSynced(l);
    }
    return peers;
  }

  #state(): RedundancyState {
    if (this.#role === 'recovering' || this.#election?.fetching) return 'recovering';
    const active = [...this.#links.active()];
    const connected = active.filter((l) => l.view).length;
    if (connected < this.#cfg.peers.length) return 'peer not available';
    if (this.#role === 'serving') {
      for (const l of active) if (!this.#rep.isSynced(l)) return 'not synced';
      return 'paired and synced';
    }
    return this.#role === 'following' ? 'paired and synced' : 'not synced';
  }

  #knownMaster(): string | null {
    if (this.#role === 'following' || this.#role === 'recovering') return this.#master;
    const conn = this.#links.connected();
    for (const l of conn) if (l.view!.role === 'serving') return l.name;
    const c = candidateOf(this.#self, conn);
    return c && c !== this.#self.name ? c : null;
  }

  // ---- links ----

  #onReady(link: PeerLink): void {
    this.#lastPeerHeard = Date.now();
    if (this.#cfg.mode === 'backup') this.#learnedLicensePort = link.remote!.license;
    this.#sendHb(link);
    this.#evaluate();
  }

  #onClose(link: PeerLink, _reason: string): void {
    this.#rep.removeFollower(link);
    if (this.#followLink === link) this.#unfollow();
    this.#rep.dropSnapshot(link);
    const e = this.#election;
    if (e) {
      e.votes.delete(link);
      if (e.fetching === link) this.#abortElection('the member holding the fresher state went away');
    }
    if (this.#stopped) return;
    this.#evaluate();
    // The other peers hear of this loss (and of any role it changed) now, not at the next heartbeat: one may be
    // waiting for it to vote (see 'hb').
    for (const l of this.#links.active()) if (l.ready) this.#sendHb(l);
  }

  #sendHb(link: PeerLink): void {
    link.send({ t: 'hb', role: this.#role, term: this.#rep.term, seq: this.#rep.seq, voted: this.#voted, master: this.#master });
  }

  #tick(): void {
    if (this.#stopped) return;
    const now = Date.now();
    const hb = this.#cfg.heartbeat;
    if (this.#role === 'serving' && this.#cfg.mode === 'backup' && now - this.#lastTick > 2 * hb) {
      this.#stepDown(`event loop frozen for ${now - this.#lastTick}ms`);
    }
    this.#lastTick = now;
    this.#links.closeSilent(now, 3 * hb);
    if (now - this.#lastHb >= hb) {
      this.#lastHb = now;
      for (const l of this.#links.active()) this.#sendHb(l);
    }
    this.#links.dialMissing(now);
    this.#evaluate();
  }

  // ---- messages ----

  #onMessage(link: PeerLink, m: PeerMessage): void {
    if (this.#cfg.mode === 'backup') this.#lastPeerHeard = Date.now();
    switch (m.t) {
      case 'hb': {
        const was = link.view;
        link.view = { role: m.role, term: m.term, seq: m.seq, voted: m.voted, master: m.master };
        // A peer that stopped following (its master went away) may now vote for the candidate it refused: a
        // candidate waiting out its back-off asks again at once instead of a heartbeat or two later.
        if (was !== null && was.role === 'following' && m.role === 'waiting' && this.#role === 'waiting') this.#nextElection = 0;
        return this.#evaluate();
      }
      case 'vote-req':
        return this.#onVoteReq(link, m.term);
      case 'vote':
        return this.#onVote(link, m);
      case 'fetch':
        return this.#rep.sendSnapshot(link);
      case 'follow':
        return this.#onFollow(link);
      case 'leave':
        return this.#rep.removeFollower(link);
      case 'stale':
        return this.#onStale(link, m.term);
      case 'snap':
        return this.#onSnap(link, m);
      case 'sess':
      case 'qent':
        return this.#rep.onSnapEntry(link, m);
      case 'snapend':
        return this.#onSnapEnd(link);
      case 'op':
        return this.#onOp(link, m);
      case 'ack':
        if (this.#role === 'serving') this.#rep.onAck(link, m.term, m.seq);
        return;
      default:
        return link.close(`unexpected ${m.t}`);
    }
  }

  // ---- the decision, re-made on every event ----

  #evaluate(): void {
    if (this.#stopped || !this.#started) return;
    const now = Date.now();
    const conn = this.#links.connected();
    const triad = this.#cfg.mode === 'triad';
    const quorum = !triad || conn.length >= 1;

    if (this.#role === 'serving') {
      if (!quorum) return this.#stepDown('lost quorum: no peer connected');
      for (const l of conn) {
        const v = l.view!;
        if (v.role === 'serving' && (v.term > this.#rep.term || (v.term === this.#rep.term && l.remote!.order < this.#self.order))) {
          return this.#stepDown(`${l.name} serves term ${v.term}`);
        }
        // A peer that promised a newer term to a candidate that never served can follow nobody older: make way
        // for an election it can take part in.
        if (v.role === 'waiting' && v.voted > this.#rep.term && !this.#rep.hasFollower(l)) {
          return this.#stepDown(`${l.name} promised term ${v.voted}`);
        }
      }
      return;
    }
    if (this.#role === 'following' || this.#role === 'recovering') {
      const ml = this.#followLink;
      if (!ml || !ml.ready || (ml.view && ml.view.role !== 'serving') || (this.#role === 'recovering' && now > this.#followDeadline)) {
        this.#unfollow();
      } else {
        if (this.#role === 'following' && candidateOf(this.#self, conn) === this.#self.name && now >= this.#nextElection) this.#startElection(conn);
        return;
      }
    }
    if (this.#role === 'candidate') {
      const e = this.#election!;
      if (now > e.deadline) this.#abortElection('no majority of votes in time');
      return;
    }
    // waiting
    let serving: PeerLink | null = null;
    for (const l of conn) {
      const v = l.view!;
      if (v.role === 'serving' && v.term >= this.#voted && (!serving || v.term > serving.view!.term)) serving = l;
    }
    if (serving) return this.#follow(serving);
    if (!quorum) return;
    if (conn.length > 0) {
      if (candidateOf(this.#self, conn) === this.#self.name && now >= this.#nextElection) this.#startElection(conn);
      return;
    }
    if (!triad) this.#maybeServeAlone(now);
  }

  /**
   * Backup pair with no link to the peer. A pair has no quorum, so it buys availability with a witness: the
   * member serves alone once the peer has been silent for 3 heartbeats AND the peer's license port (the client
   * path) does not say it serves. A cut peer link therefore never makes two servers; a full partition (the peer
   * unreachable on every port while clients still reach both) can (PROTOCOL.md "Backup pair").
   */
  #maybeServeAlone(now: number): void {
    const hb = this.#cfg.heartbeat;
    const silentSince = this.#lastPeerHeard;
    if (now - silentSince < 3 * hb) return;
    const peer = this.#cfg.peers[0]!;
    const license = this.#learnedLicensePort;
    if (license) {
      const w = this.#witness;
      if (!w || w.at < silentSince + 3 * hb || now - w.at > hb) {
        if (!this.#witnessRunning) {
          this.#witnessRunning = true;
          void probeWitness(peer.host, license, Math.max(500, hb)).then((result) => {
            this.#witnessRunning = false;
            this.#witness = { result, at: Date.now() };
            if (result !== this.#witnessLogged) {
              this.#witnessLogged = result;
              this.#log.info({ event: 'witness', peer: `${peer.host}:${license}`, result }, `peer license port ${peer.host}:${license}: ${result}`);
            }
            this.#evaluate();
          });
        }
        return;
      }
      if (w.result === 'serving') return;
    }
    this.#becomeServing(Math.max(this.#voted, this.#rep.term) + 1, []);
  }

  // ---- elections ----

  #startElection(conn: PeerLink[]): void {
    let term = Math.max(this.#voted, this.#rep.term);
    for (const l of conn) term = Math.max(term, l.view!.term, l.view!.voted);
    term += 1;
    // A synced follower asking to take over keeps acknowledging its master meanwhile (a pair master waits for it).
    const votedBefore = this.#voted;
    this.#voted = term;
    this.#setRole('candidate', null);
    this.#election = new Election(term, votedBefore, Date.now() + 3 * this.#cfg.heartbeat);
    for (const l of conn) l.send({ t: 'vote-req', term });
  }

  #abortElection(why: string): void {
    this.#log.info({ event: 'election-failed', reason: why }, `election failed: ${why}`);
    // A failed candidacy must not stop this member from following the master that does serve.
    if (this.#election && this.#voted === this.#election.term) this.#voted = this.#election.votedBefore;
    // A snapshot still arriving for this election is stale once it is over.
    if (this.#election?.fetching) this.#rep.dropSnapshot(this.#election.fetching);
    this.#election = null;
    this.#nextElection = Date.now() + this.#cfg.heartbeat * (1 + Math.random());
    if (this.#role !== 'candidate') return;
    const ml = this.#followLink;
    if (ml?.ready) this.#setRole('following', ml.name);
    else {
      this.#followLink = null;
      this.#setRole('waiting', null);
    }
  }

  #onVoteReq(link: PeerLink, term: number): void {
    const conn = this.#links.connected();
    let ok = term > this.#voted && candidateOf(this.#self, conn) === link.name;
    // A serving member hands over only to a member that has synced from it (a returning primary, SPEC 4.3).
    if (ok && this.#role === 'serving') ok = this.#rep.isSynced(link);
    if (ok) {
      this.#voted = term;
      if (this.#role === 'serving') this.#stepDown(`handing over to ${link.name}`);
      if (this.#followLink && this.#followLink !== link) this.#followLink.send({ t: 'leave' });
      if (this.#role !== 'waiting') {
        this.#followLink = null;
        this.#election = null;
        this.#setRole('waiting', null);
      }
    }
    link.send({ t: 'vote', term, ok, sterm: this.#rep.term, sseq: this.#rep.seq });
  }

  #onVote(link: PeerLink, m: { term: number; ok: boolean; sterm: number; sseq: number }): void {
    const e = this.#election;
    if (!e || m.term !== e.term || e.fetching) return;
    const tally = e.record(link, { ok: m.ok, sterm: m.sterm, sseq: m.sseq }, this.#rep, this.#links.connected().length);
    switch (tally.kind) {
      case 'wait':
        return;
      case 'refused':
        return this.#abortElection('votes refused');
      case 'fetch':
        e.fetching = tally.from;
        this.#setRole('candidate', null);
        tally.from.send({ t: 'fetch' });
        return;
      case 'won':
        return this.#becomeServing(e.term, tally.voters);
    }
  }

  #becomeServing(term: number, voters: PeerLink[]): void {
    this.#election = null;
    this.#followLink = null;
    this.#rep.newTerm(term);
    this.#voted = Math.max(this.#voted, term);
    this.#setRole('serving', this.#self.name);
    this.#host.startServing();
    for (const l of voters) if (l.ready) this.#onFollow(l);
    for (const l of this.#links.active()) this.#sendHb(l);
  }

  #stepDown(reason: string): void {
    if (this.#role !== 'serving') return;
    this.#log.warn({ event: 'step-down', reason, term: this.#rep.term }, `stopped serving: ${reason}`);
    this.#setRole('waiting', null);
    this.#rep.stopLeading();
    this.#host.stopServing(reason);
    this.#nextElection = Date.now() + this.#cfg.heartbeat;
    for (const l of this.#links.active()) this.#sendHb(l);
  }

  #setRole(role: PeerRole, master: string | null): void {
    const changed = role !== this.#role || master !== this.#master;
    this.#role = role;
    this.#master = master;
    if (changed) {
      this.#log.info({ event: 'role', role, master, term: this.#rep.term }, `role ${role}${master ? ` (master ${master})` : ''}${role === 'serving' ? `, term ${this.#rep.term}` : ''}`);
    }
  }

  // ---- following ----

  #follow(link: PeerLink): void {
    this.#followLink = link;
    this.#followDeadline = Date.now() + 3 * this.#cfg.heartbeat + 2_000;
    this.#setRole('recovering', link.name);
    link.send({ t: 'follow' });
  }

  #unfollow(): void {
    this.#followLink = null;
    this.#host.lostMaster();
    this.#rep.dropSnapshot();
    if (this.#role === 'following' || this.#role === 'recovering') this.#setRole('waiting', null);
  }

  #onFollow(link: PeerLink): void {
    if (this.#role !== 'serving') return;
    this.#rep.addFollower(link);
  }

  #onSnap(link: PeerLink, m: { term: number; seq: number; n: number }): void {
    const fetching = this.#election?.fetching === link;
    if (!fetching && (link !== this.#followLink || this.#role !== 'recovering')) return;
    if (!fetching && m.term < this.#voted) {
      link.send({ t: 'stale', term: this.#voted });
      return this.#unfollow();
    }
    this.#rep.beginSnapshot(link, m, fetching ? 'fetch' : 'follow');
  }

  #onSnapEnd(link: PeerLink): void {
    const s = this.#rep.endSnapshot(link);
    if (!s) return;
    if (s.purpose === 'fetch') {
      const e = this.#election;
      // Only the snapshot this election asked for completes it: one of an election that timed out meanwhile would
      // make this member serve in a later election that has no majority yet.
      if (!e || e.fetching !== link) return;
      // A candidate keeps applying its old master's ops while it fetches; if it got further than the voter's
      // snapshot meanwhile, loading the snapshot would lose changes the old master already acknowledged to clients.
      if (!this.#rep.holdsAtLeast(s)) {
        this.#host.replicaLoad(s.sessions, s.queue);
        this.#rep.adopt(s);
      }
      this.#log.info({ event: 'fetched', from: link.name, term: s.term, seq: s.seq }, `fetched the fresher state of ${link.name}`);
      return this.#becomeServing(e.term, e.voters());
    }
    this.#host.replicaLoad(s.sessions, s.queue);
    this.#rep.adopt(s);
    this.#voted = Math.max(this.#voted, s.term);
    this.#setRole('following', link.name);
    link.send({ t: 'ack', term: s.term, seq: s.seq });
  }

  #onOp(link: PeerLink, m: { t: 'op'; term: number; seq: number } & ReplicatedOp): void {
    if (link !== this.#followLink || (this.#role !== 'following' && this.#role !== 'candidate') || m.term !== this.#rep.term) {
      if (m.term < this.#voted) link.send({ t: 'stale', term: this.#voted });
      return;
    }
    this.#rep.applyOp(link, m);
  }

  #onStale(link: PeerLink, term: number): void {
    this.#voted = Math.max(this.#voted, term);
    if (this.#role === 'serving') this.#stepDown(`${link.name} follows a newer term ${term}`);
    else if (this.#followLink === link) this.#unfollow();
  }
}
