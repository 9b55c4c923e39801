import { lookup } from 'node:dns/promises';
import { createServer, connect, isIP, type Server, type Socket } from 'node:net';
import { formatHostPort } from '../common/address.ts';
import { plainIp } from '../common/allow-list.ts';
import { LpxError, errorMessage } from '../common/errors.ts';
import type { Logger } from '../common/logger.ts';
import type { LicdRedundancyConfig } from '../config/licd-config.ts';
import { PeerLink, type PeerLinkHooks } from './peer-link.ts';
import type { MemberInfo, PeerMessage, PeerRole, QueueRecord, ReplicatedOp, SessionRecord } from './peer-messages.ts';
import { probeWitness, type WitnessResult } from './witness-probe.ts';

/** What the redundancy layer needs of its daemon: the replicated state, and serving on or off. */
export interface ReplicaHost {
  readonly name: string;
  readonly logger: Logger;
  readonly licensePort: number;
  readonly tokensPort: number;
  /** Every session and queue entry this member holds, live or detached. */
  replicaSnapshot(): { sessions: SessionRecord[]; queue: QueueRecord[] };
  /** Replaces the replicated state (never called while serving). */
  replicaLoad(sessions: SessionRecord[], queue: QueueRecord[]): void;
  replicaApply(op: ReplicatedOp): void;
  /** This member now serves: detached sessions start their heartbeat_timeout. */
  startServing(): void;
  /** This member stopped serving: live sessions become detached (nothing freed), client connections close. */
  stopServing(reason: string): void;
}

export type RedundancyState = 'paired and synced' | 'peer not available' | 'not synced' | 'recovering';

export interface RedundancyPeerStatus {
  name: string | null;
  address: string;
  connected: boolean;
  role: PeerRole | null;
}

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

interface Follower {
  /** Last acknowledged seq of the current term; -1 while its snapshot is in flight. */
  acked: number;
}

interface Pending {
  seq: number;
  done(ok: boolean): void;
}

interface Election {
  term: number;
  /** `#voted` before this member voted for itself: restored when the election fails (nobody serves that term). */
  votedBefore: number;
  deadline: number;
  votes: Map<PeerLink, { ok: boolean; sterm: number; sseq: number }>;
  /** The voter whose fresher state is being fetched before serving. */
  fetching: PeerLink | null;
}

interface IncomingSnapshot {
  link: PeerLink;
  term: number;
  seq: number;
  n: number;
  sessions: SessionRecord[];
  queue: QueueRecord[];
  purpose: 'follow' | 'fetch';
}

const MAX_HANDSHAKES = 16;

/**
 * Membership, election and synchronous replication of a backup pair or triad (SPEC 4.3). The whole design and its
 * trade-offs are in PROTOCOL.md ("Redundancy"); in short:
 *
 * - Members link on the peer port (challenge / HMAC handshake), exchange heartbeats, and a link silent for 3
 *   heartbeats is dropped.
 * - A member serves only after winning a term: the candidate (lowest `order` among connected members; triad:
 *   with quorum) asks the others for votes; a voter promises the term, stops following any other master, and
 *   hands over its state if fresher. A pair member alone may serve only after the rules of `#maybeServeAlone`.
 * - The master streams every change as a numbered op; a change that a client will see (GRANTED) completes only
 *   when acknowledged (triad: by a follower; pair: by the backup when it is linked).
 */
export class Redundancy {
  readonly #cfg: LicdRedundancyConfig;
  readonly #host: ReplicaHost;
  readonly #log: Logger;
  #self!: MemberInfo;
  #server: Server | null = null;
  /** Active link per member name. */
  readonly #active = new Map<string, PeerLink>();
  /** Links still in their handshake. */
  readonly #handshaking = new Set<PeerLink>();
  /** Member name found at each configured peer address (learned by dialing it). */
  readonly #slotName: Array<string | null>;
  readonly #dialing: boolean[];
  readonly #nextDial: number[];
  #allowedIps = new Set<string>();
  #role: PeerRole = 'waiting';
  /** Term of the state this member holds (the term of its master), and the last op applied in it. */
  #term = 0;
  #seq = 0;
  /** Highest term promised (voted for, followed or served); older masters are refused. */
  #voted = 0;
  #master: string | null = null;
  #followLink: PeerLink | null = null;
  #snapIn: IncomingSnapshot | null = null;
  readonly #followers = new Map<PeerLink, Follower>();
  readonly #pending: Pending[] = [];
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
  #stopped = false;

  constructor(cfg: LicdRedundancyConfig, host: ReplicaHost, logger: Logger) {
    this.#cfg = cfg;
    this.#host = host;
    this.#log = logger;
    this.#slotName = cfg.peers.map(() => null);
    this.#dialing = cfg.peers.map(() => false);
    this.#nextDial = cfg.peers.map(() => 0);
  }

  get mode(): 'backup' | 'triad' {
    return this.#cfg.mode;
  }

  get role(): PeerRole {
    return this.#role;
  }

  /** Opens the peer port; resolves its actual port. */
  async start(host: string, port: number, self: Omit<MemberInfo, 'addr'>): Promise<number> {
    for (const p of this.#cfg.peers) {
      if (isIP(p.host)) this.#allowedIps.add(p.host);
      else {
        try {
          for (const a of await lookup(p.host, { all: true })) this.#allowedIps.add(a.address);
        } catch (err) {
          this.#log.warn({ event: 'peer-resolve', peer: p.host, error: errorMessage(err) }, `cannot resolve peer ${p.host} (retried on link)`);
        }
      }
    }
    const server = createServer({ noDelay: true }, (s) => this.#accept(s));
    this.#server = server;
    const bound = await new Promise<number>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new LpxError('LPX_ERR_LISTEN', `licd ${self.name}: cannot listen on ${host}:${port} (peer port): ${err.code ?? err.message}`)),
      );
      server.listen({ host, port }, () => resolve((server.address() as { port: number }).port));
    });
    server.on('error', (err) => this.#log.error({ err: errorMessage(err) }, 'peer listener error'));
    this.#self = { ...self, addr: formatHostPort({ host, port: bound }) };
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
    for (const l of [...this.#active.values(), ...this.#handshaking]) l.close('shutdown');
    const server = this.#server;
    this.#server = null;
    if (server?.listening) await new Promise<void>((r) => server.close(() => r()));
  }

  // ---- what the daemon asks ----

  /** Serving and able to complete a grant: the member that shows (MASTER). */
  get effective(): boolean {
    if (this.#role !== 'serving') return false;
    if (this.#cfg.mode === 'backup') return true;
    for (const f of this.#followers.values()) if (f.acked >= 0) return true;
    return false;
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
    const seq = ++this.#seq;
    const m = { t: 'op', term: this.#term, seq, ...op } as PeerMessage;
    for (const link of this.#followers.keys()) link.send(m);
    if (done) {
      this.#pending.push({ seq, done });
      this.#settle();
    }
  }

  status(): RedundancyStatus {
    const peers: RedundancyPeerStatus[] = this.#cfg.peers.map((p, i) => {
      const name = this.#slotName[i] ?? null;
      const link = name ? this.#active.get(name) : undefined;
      return { name, address: formatHostPort(p), connected: !!link?.view, role: link?.view?.role ?? null };
    });
    // Members that linked to us but whose address we have not dialed yet.
    for (const [name, link] of this.#active) {
      if (!peers.some((p) => p.name === name)) {
        const free = peers.find((p) => p.name === null && !p.connected);
        if (free) Object.assign(free, { name, connected: !!link.view, role: link.view?.role ?? null });
      }
    }
    return {
      mode: this.#cfg.mode,
      order: this.#cfg.order,
      state: this.#state(),
      role: this.#role,
      term: this.#term,
      seq: this.#seq,
      master: this.effective ? this.#self.name : this.#role === 'following' ? this.#master : null,
      peers,
    };
  }

  #state(): RedundancyState {
    if (this.#role === 'recovering' || this.#election?.fetching) return 'recovering';
    const connected = [...this.#active.values()].filter((l) => l.view).length;
    if (connected < this.#cfg.peers.length) return 'peer not available';
    if (this.#role === 'serving') {
      for (const l of this.#active.values()) if ((this.#followers.get(l)?.acked ?? -1) < 0) return 'not synced';
      return 'paired and synced';
    }
    return this.#role === 'following' ? 'paired and synced' : 'not synced';
  }

  #knownMaster(): string | null {
    if (this.#role === 'following' || this.#role === 'recovering') return this.#master;
    for (const l of this.#connected()) if (l.view!.role === 'serving') return l.name;
    const c = this.#candidate(this.#connected());
    return c && c !== this.#self.name ? c : null;
  }

  // ---- links ----

  #hooks(): PeerLinkHooks {
    return {
      admit: (hello, ip) => this.#admit(hello, ip),
      accept: (welcome) => this.#checkMember(welcome),
      onReady: (link) => this.#onReady(link),
      onMessage: (link, m) => this.#onMessage(link, m),
      onClose: (link, reason) => this.#onClose(link, reason),
    };
  }

  #linkOptions() {
    return { self: this.#self, secret: this.#cfg.secret, heartbeat: this.#cfg.heartbeat, logger: this.#log };
  }

  #accept(socket: Socket): void {
    const ip = plainIp(socket.remoteAddress);
    if (this.#stopped || !this.#allowedIps.has(ip) || this.#handshaking.size >= MAX_HANDSHAKES) {
      this.#log.warn({ event: 'peer-refused', address: ip }, `peer connection from ${ip} refused: not a configured peer address`);
      socket.destroy();
      return;
    }
    this.#handshaking.add(new PeerLink(socket, false, this.#linkOptions(), this.#hooks()));
  }

  #dial(i: number): void {
    const p = this.#cfg.peers[i]!;
    this.#dialing[i] = true;
    const socket = connect({ host: p.host, port: p.port });
    const fail = () => {
      this.#dialing[i] = false;
      this.#nextDial[i] = Date.now() + this.#cfg.heartbeat;
    };
    socket.once('error', fail);
    socket.once('connect', () => {
      socket.off('error', fail);
      const link = new PeerLink(socket, true, this.#linkOptions(), {
        ...this.#hooks(),
        accept: (welcome) => this.#checkMember(welcome),
        onReady: (l) => {
          this.#slotName[i] = l.name;
          this.#dialing[i] = false;
          this.#onReady(l);
        },
        onClose: (l, reason) => {
          if (this.#dialing[i]) fail();
          this.#onClose(l, reason);
        },
      });
      this.#handshaking.add(link);
    });
  }

  #checkMember(m: MemberInfo): string | null {
    if (m.mode !== this.#cfg.mode) return `peer ${m.name} runs mode ${m.mode}, this member ${this.#cfg.mode}`;
    if (m.name === this.#self.name) return `peer has this member's own name ${m.name}`;
    if (m.order === this.#self.order) return `peer ${m.name} has the same order ${m.order} as this member`;
    return null;
  }

  #admit(hello: MemberInfo, ip: string): string | null {
    const why = this.#checkMember(hello);
    if (why) return why;
    if (!this.#allowedIps.has(ip)) return `peer ${hello.name} connects from ${ip}, not a configured peer address`;
    if (!this.#active.has(hello.name) && this.#active.size >= this.#cfg.peers.length) return `peer ${hello.name}: the set already has ${this.#cfg.peers.length} peers`;
    return null;
  }

  #onReady(link: PeerLink): void {
    this.#handshaking.delete(link);
    const name = link.name;
    // A member that dialed us names its own peer address: its slot is known now, so the dial loop does not dial it
    // again once another peer goes away (a second link would replace this one and, for a moment, leave no quorum).
    const slot = this.#cfg.peers.findIndex((p) => formatHostPort(p) === link.remote!.addr);
    if (slot >= 0 && this.#slotName[slot] === null) this.#slotName[slot] = name;
    const old = this.#active.get(name);
    if (old && old !== link) {
      // Both dialed at once: keep the link dialed by the lower order on both sides; a redial replaces a stale one.
      const by = (l: PeerLink) => (l.dialed ? this.#self.order : l.remote!.order);
      if (by(old) < by(link)) {
        link.close('duplicate link');
        return;
      }
      // The same member, a new link: what it last said stands until it speaks again (no gap in the quorum).
      link.view ??= old.view;
      this.#active.set(name, link);
      old.close('replaced by a new link');
    } else this.#active.set(name, link);
    this.#log.info({ event: 'peer-up', peer: name, address: link.remoteIp }, `peer ${name} linked`);
    this.#lastPeerHeard = Date.now();
    if (this.#cfg.mode === 'backup') this.#learnedLicensePort = link.remote!.license;
    this.#sendHb(link);
    this.#evaluate();
  }

  #onClose(link: PeerLink, reason: string): void {
    this.#handshaking.delete(link);
    if (link.remote && reason !== 'duplicate link' && reason !== 'shutdown') {
      const level = this.#active.get(link.name) === link ? 'warn' : 'debug';
      this.#log[level]({ event: 'peer-down', peer: link.name, reason }, `peer ${link.name} link closed: ${reason}`);
    } else if (!link.remote && reason !== 'shutdown' && reason !== 'link closed') {
      this.#log.warn({ event: 'peer-refused', address: link.remoteIp, reason }, `peer link from ${link.remoteIp} refused: ${reason}`);
    }
    if (this.#active.get(link.name) === link) this.#active.delete(link.name);
    if (this.#followers.delete(link)) this.#settle();
    if (this.#followLink === link) this.#unfollow();
    if (this.#snapIn?.link === link) this.#snapIn = null;
    const e = this.#election;
    if (e) {
      e.votes.delete(link);
      if (e.fetching === link) this.#abortElection('the member holding the fresher state went away');
    }
    if (!this.#stopped) this.#evaluate();
  }

  #connected(): PeerLink[] {
    const out: PeerLink[] = [];
    for (const l of this.#active.values()) if (l.ready && l.view) out.push(l);
    return out;
  }

  #sendHb(link: PeerLink): void {
    link.send({ t: 'hb', role: this.#role, term: this.#term, seq: this.#seq, voted: this.#voted, master: this.#master });
  }

  #tick(): void {
    if (this.#stopped) return;
    const now = Date.now();
    const hb = this.#cfg.heartbeat;
    if (this.#role === 'serving' && this.#cfg.mode === 'backup' && now - this.#lastTick > 2 * hb) {
      this.#stepDown(`event loop frozen for ${now - this.#lastTick}ms`);
    }
    this.#lastTick = now;
    for (const l of [...this.#active.values()]) {
      if (l.silentFor(now) > 3 * hb) l.close(`peer silent for 3 heartbeats (${l.silentFor(now)}ms)`);
    }
    if (now - this.#lastHb >= hb) {
      this.#lastHb = now;
      for (const l of this.#active.values()) this.#sendHb(l);
    }
    this.#cfg.peers.forEach((_, i) => {
      const name = this.#slotName[i];
      if (this.#dialing[i] || (name && this.#active.has(name)) || now < this.#nextDial[i]!) return;
      // An address whose member already linked to us (its name unknown here until we dial it) needs no dial.
      if (!name && this.#active.size >= this.#cfg.peers.length) return;
      this.#dial(i);
    });
    this.#evaluate();
  }

  // ---- messages ----

  #onMessage(link: PeerLink, m: PeerMessage): void {
    if (this.#active.get(link.name) !== link) return;
    if (this.#cfg.mode === 'backup') this.#lastPeerHeard = Date.now();
    switch (m.t) {
      case 'hb':
        link.view = { role: m.role, term: m.term, seq: m.seq, voted: m.voted, master: m.master };
        return this.#evaluate();
      case 'vote-req':
        return this.#onVoteReq(link, m.term);
      case 'vote':
        return this.#onVote(link, m);
      case 'fetch':
        return this.#sendSnapshot(link);
      case 'follow':
        return this.#onFollow(link);
      case 'leave':
        if (this.#followers.delete(link)) this.#settle();
        return;
      case 'stale':
        return this.#onStale(link, m.term);
      case 'snap':
        return this.#onSnap(link, m);
      case 'sess':
      case 'qent':
        return this.#onSnapEntry(link, m);
      case 'snapend':
        return this.#onSnapEnd(link);
      case 'op':
        return this.#onOp(link, m);
      case 'ack':
        return this.#onAck(link, m.term, m.seq);
      default:
        return link.close(`unexpected ${m.t}`);
    }
  }

  #protocolError(link: PeerLink, what: string): void {
    this.#log.warn({ event: 'peer-protocol', peer: link.name, what }, `peer ${link.name}: ${what}; link closed`);
    link.close(what);
  }

  // ---- the decision, re-made on every event ----

  /** Lowest order among this member and the connected ones; null without quorum (triad) or alone (pair). */
  #candidate(conn: PeerLink[]): string | null {
    if (conn.length === 0) return null;
    let best = { name: this.#self.name, order: this.#self.order };
    for (const l of conn) if (l.remote!.order < best.order) best = { name: l.name, order: l.remote!.order };
    return best.name;
  }

  #evaluate(): void {
    if (this.#stopped || !this.#self) return;
    const now = Date.now();
    const conn = this.#connected();
    const triad = this.#cfg.mode === 'triad';
    const quorum = !triad || conn.length >= 1;

    if (this.#role === 'serving') {
      if (!quorum) return this.#stepDown('lost quorum: no peer connected');
      for (const l of conn) {
        const v = l.view!;
        if (v.role === 'serving' && (v.term > this.#term || (v.term === this.#term && l.remote!.order < this.#self.order))) {
          return this.#stepDown(`${l.name} serves term ${v.term}`);
        }
        // A peer that promised a newer term to a candidate that never served can follow nobody older: make way
        // for an election it can take part in.
        if (v.role === 'waiting' && v.voted > this.#term && !this.#followers.has(l)) {
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
        if (this.#role === 'following' && this.#candidate(conn) === this.#self.name && now >= this.#nextElection) this.#startElection(conn);
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
      if (this.#candidate(conn) === this.#self.name && now >= this.#nextElection) this.#startElection(conn);
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
    this.#becomeServing(Math.max(this.#voted, this.#term) + 1, []);
  }

  // ---- elections ----

  #startElection(conn: PeerLink[]): void {
    let term = Math.max(this.#voted, this.#term);
    for (const l of conn) term = Math.max(term, l.view!.term, l.view!.voted);
    term += 1;
    // A synced follower asking to take over keeps acknowledging its master meanwhile (a pair master waits for it).
    const votedBefore = this.#voted;
    this.#voted = term;
    this.#setRole('candidate', null);
    this.#election = { term, votedBefore, deadline: Date.now() + 3 * this.#cfg.heartbeat, votes: new Map(), fetching: null };
    for (const l of conn) l.send({ t: 'vote-req', term });
  }

  #abortElection(why: string): void {
    this.#log.info({ event: 'election-failed', reason: why }, `election failed: ${why}`);
    // A failed candidacy must not stop this member from following the master that does serve.
    if (this.#election && this.#voted === this.#election.term) this.#voted = this.#election.votedBefore;
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
    const conn = this.#connected();
    let ok = term > this.#voted && this.#candidate(conn) === link.name;
    // A serving member hands over only to a member that has synced from it (a returning primary, SPEC 4.3).
    if (ok && this.#role === 'serving') ok = (this.#followers.get(link)?.acked ?? -1) >= 0;
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
    link.send({ t: 'vote', term, ok, sterm: this.#term, sseq: this.#seq });
  }

  #onVote(link: PeerLink, m: { term: number; ok: boolean; sterm: number; sseq: number }): void {
    const e = this.#election;
    if (!e || m.term !== e.term || e.fetching) return;
    e.votes.set(link, m);
    const yes = [...e.votes].filter(([, v]) => v.ok);
    if (yes.length === 0) {
      if (e.votes.size >= this.#connected().length) this.#abortElection('votes refused');
      return;
    }
    // Triad: one vote makes a majority of three. Pair: the peer's vote.
    let fresh: PeerLink | null = null;
    let ft = this.#term;
    let fs = this.#seq;
    for (const [l, v] of yes) {
      if (v.sterm > ft || (v.sterm === ft && v.sseq > fs)) {
        fresh = l;
        ft = v.sterm;
        fs = v.sseq;
      }
    }
    if (fresh) {
      e.fetching = fresh;
      this.#setRole('candidate', null);
      fresh.send({ t: 'fetch' });
      return;
    }
    this.#becomeServing(e.term, yes.map(([l]) => l));
  }

  #becomeServing(term: number, voters: PeerLink[]): void {
    this.#election = null;
    this.#followLink = null;
    this.#term = term;
    this.#seq = 0;
    this.#voted = Math.max(this.#voted, term);
    this.#followers.clear();
    this.#setRole('serving', this.#self.name);
    this.#host.startServing();
    for (const l of voters) if (l.ready) this.#onFollow(l);
    for (const l of this.#active.values()) this.#sendHb(l);
  }

  #stepDown(reason: string): void {
    if (this.#role !== 'serving') return;
    this.#log.warn({ event: 'step-down', reason, term: this.#term }, `stopped serving: ${reason}`);
    this.#setRole('waiting', null);
    this.#followers.clear();
    const pending = this.#pending.splice(0);
    for (const p of pending) p.done(false);
    this.#host.stopServing(reason);
    this.#nextElection = Date.now() + this.#cfg.heartbeat;
    for (const l of this.#active.values()) this.#sendHb(l);
  }

  #setRole(role: PeerRole, master: string | null): void {
    const changed = role !== this.#role || master !== this.#master;
    this.#role = role;
    this.#master = master;
    if (changed) {
      this.#log.info({ event: 'role', role, master, term: this.#term }, `role ${role}${master ? ` (master ${master})` : ''}${role === 'serving' ? `, term ${this.#term}` : ''}`);
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
    this.#snapIn = null;
    if (this.#role === 'following' || this.#role === 'recovering') this.#setRole('waiting', null);
  }

  #onFollow(link: PeerLink): void {
    if (this.#role !== 'serving') return;
    this.#followers.set(link, { acked: -1 });
    this.#sendSnapshot(link);
  }

  #sendSnapshot(link: PeerLink): void {
    const { sessions, queue } = this.#host.replicaSnapshot();
    link.send({ t: 'snap', term: this.#term, seq: this.#seq, n: sessions.length + queue.length });
    for (const r of sessions) link.send({ t: 'sess', r });
    for (const r of queue) link.send({ t: 'qent', r });
    link.send({ t: 'snapend' });
  }

  #onSnap(link: PeerLink, m: { term: number; seq: number; n: number }): void {
    const fetching = this.#election?.fetching === link;
    if (!fetching && (link !== this.#followLink || this.#role !== 'recovering')) return;
    if (!fetching && m.term < this.#voted) {
      link.send({ t: 'stale', term: this.#voted });
      return this.#unfollow();
    }
    this.#snapIn = { link, term: m.term, seq: m.seq, n: m.n, sessions: [], queue: [], purpose: fetching ? 'fetch' : 'follow' };
  }

  #onSnapEntry(link: PeerLink, m: { t: 'sess'; r: SessionRecord } | { t: 'qent'; r: QueueRecord }): void {
    const s = this.#snapIn;
    if (!s || s.link !== link) return;
    if (s.sessions.length + s.queue.length >= s.n) return this.#protocolError(link, 'snapshot longer than announced');
    if (m.t === 'sess') s.sessions.push(m.r);
    else s.queue.push(m.r);
  }

  #onSnapEnd(link: PeerLink): void {
    const s = this.#snapIn;
    if (!s || s.link !== link) return;
    this.#snapIn = null;
    if (s.sessions.length + s.queue.length !== s.n) return this.#protocolError(link, 'snapshot shorter than announced');
    this.#host.replicaLoad(s.sessions, s.queue);
    this.#term = s.term;
    this.#seq = s.seq;
    if (s.purpose === 'fetch') {
      const e = this.#election;
      if (!e) return;
      const voters = [...e.votes].filter(([, v]) => v.ok).map(([l]) => l);
      this.#log.info({ event: 'fetched', from: link.name, term: s.term, seq: s.seq }, `fetched the fresher state of ${link.name}`);
      return this.#becomeServing(e.term, voters);
    }
    this.#voted = Math.max(this.#voted, s.term);
    this.#setRole('following', link.name);
    link.send({ t: 'ack', term: s.term, seq: s.seq });
  }

  #onOp(link: PeerLink, m: { t: 'op'; term: number; seq: number } & ReplicatedOp): void {
    if (link !== this.#followLink || (this.#role !== 'following' && this.#role !== 'candidate') || m.term !== this.#term) {
      if (m.term < this.#voted) link.send({ t: 'stale', term: this.#voted });
      return;
    }
    if (m.seq !== this.#seq + 1) return this.#protocolError(link, `replication gap: op ${m.seq} after ${this.#seq}`);
    const { t: _t, term: _term, seq: _seq, ...op } = m;
    this.#host.replicaApply(op as ReplicatedOp);
    this.#seq = m.seq;
    link.send({ t: 'ack', term: m.term, seq: m.seq });
  }

  #onAck(link: PeerLink, term: number, seq: number): void {
    const f = this.#followers.get(link);
    if (!f || term !== this.#term || this.#role !== 'serving') return;
    if (seq > f.acked) f.acked = seq;
    this.#settle();
  }

  #onStale(link: PeerLink, term: number): void {
    this.#voted = Math.max(this.#voted, term);
    if (this.#role === 'serving') this.#stepDown(`${link.name} follows a newer term ${term}`);
    else if (this.#followLink === link) this.#unfollow();
  }

  /** Completes the changes that are acknowledged as SPEC 4.3 asks, in order; fails them all when that cannot happen. */
  #settle(): void {
    const triad = this.#cfg.mode === 'triad';
    if (triad && this.#pending.length > 0 && this.#followers.size === 0) {
      const failed = this.#pending.splice(0);
      for (const p of failed) p.done(false);
      return;
    }
    while (this.#pending.length > 0) {
      const p = this.#pending[0]!;
      let acked: boolean;
      if (triad) {
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
}
