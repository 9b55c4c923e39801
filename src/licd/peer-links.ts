import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { createServer, connect, isIP, type Server, type Socket } from 'node:net';
import { formatHostPort } from '../common/address.ts';
import { plainIp } from '../common/allow-list.ts';
import { LpxError, errorMessage } from '../common/errors.ts';
import type { Logger } from '../common/logger.ts';
import type { LicdRedundancyConfig } from '../config/licd-config.ts';
import { ALREADY_LINKED, PeerLink, type PeerLinkHooks } from './peer-link.ts';
import type { MemberInfo, PeerMessage, PeerRole } from './peer-messages.ts';

export interface RedundancyPeerStatus {
  name: string | null;
  address: string;
  connected: boolean;
  role: PeerRole | null;
  /** Only on the serving member: this peer has every replicated change (Replication.isSynced). */
  synced?: boolean;
}

/** What the links report to the member that owns them. */
export interface PeerLinksEvents {
  /** A link finished its handshake and is now the member's active link. */
  onReady(link: PeerLink): void;
  /** A message on a member's active link (messages on a replaced link are dropped). */
  onMessage(link: PeerLink, m: PeerMessage): void;
  /** A link that was reported ready closed (a replaced one too); links that never were are not reported. */
  onClose(link: PeerLink, reason: string): void;
}

const MAX_HANDSHAKES = 16;

/**
 * The peer links of one member of a redundant set (PROTOCOL.md "Peer protocol"): the peer port and its admission
 * (configured addresses, mode, distinct name and order, set size), dialing every configured peer it has no link
 * to or has not learned the name of, one active link per member (both dialed at once: the lower order's dial wins;
 * a redial of a live link is answered `known` and changes nothing), and dropping links silent for 3 heartbeats.
 * What the links carry is the business of the election and the replication.
 */
export class PeerLinks {
  readonly #cfg: LicdRedundancyConfig;
  readonly #log: Logger;
  readonly #events: PeerLinksEvents;
  #self!: MemberInfo;
  #server: Server | null = null;
  /** Active link per member name. */
  readonly #active = new Map<string, PeerLink>();
  /** Links still in their handshake. */
  readonly #handshaking = new Set<PeerLink>();
  /** Member name found at each configured peer address (learned by dialing it). */
  readonly #slotName: Array<string | null>;
  /**
   * Every member that was ever linked, for STATUS only: one that linked to us from an address we never dialed (a
   * NAT, a relay) has no slot name, and once its link is lost STATUS must still say it by name that it is missing,
   * or a balancer could not tell which member is gone.
   */
  readonly #everLinked = new Set<string>();
  readonly #dialing: boolean[];
  readonly #nextDial: number[];
  /** Links reported to the owner (onReady): only their closing concerns it. */
  readonly #reported = new WeakSet<PeerLink>();
  #allowedIps = new Set<string>();
  #stopped = false;

  constructor(cfg: LicdRedundancyConfig, logger: Logger, events: PeerLinksEvents) {
    this.#cfg = cfg;
    this.#log = logger;
    this.#events = events;
    this.#slotName = cfg.peers.map(() => null);
    this.#dialing = cfg.peers.map(() => false);
    this.#nextDial = cfg.peers.map(() => 0);
  }

  /** This member as its peers see it (after start). */
  get self(): MemberInfo {
    return this.#self;
  }

  /** Opens the peer port; resolves its actual port. */
  async start(host: string, port: number, self: Omit<MemberInfo, 'addr' | 'boot'>): Promise<number> {
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
    this.#self = { ...self, addr: formatHostPort({ host, port: bound }), boot: randomBytes(8).toString('hex') };
    return bound;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const l of [...this.#active.values(), ...this.#handshaking]) l.close('shutdown');
    const server = this.#server;
    this.#server = null;
    if (server?.listening) await new Promise<void>((r) => server.close(() => r()));
  }

  /** Active links that finished the handshake and have sent a heartbeat (their view is known). */
  connected(): PeerLink[] {
    const out: PeerLink[] = [];
    for (const l of this.#active.values()) if (l.ready && l.view) out.push(l);
    return out;
  }

  /** Every active link (some may not have sent a heartbeat yet). */
  active(): IterableIterator<PeerLink> {
    return this.#active.values();
  }

  /** Closes links silent for longer than `silence` ms. */
  closeSilent(now: number, silence: number): void {
    for (const l of [...this.#active.values()]) {
      if (l.silentFor(now) > silence) l.close(`peer silent for 3 heartbeats (${l.silentFor(now)}ms)`);
    }
  }

  /**
   * Dials every configured peer this member has no link to (each at most once a heartbeat). An address whose member
   * is not known yet is dialed even when every member is linked: behind a NAT or relay, the member that dialed us
   * may be at any of them, and only a dial tells which (answered `known` when it is already linked). Learning it
   * now, rather than once a member is lost, keeps a failover from redialing, and so replacing, a survivor's link.
   */
  dialMissing(now: number): void {
    this.#cfg.peers.forEach((_, i) => {
      const name = this.#slotName[i];
      if (this.#dialing[i] || (name && this.#active.has(name)) || now < this.#nextDial[i]!) return;
      this.#dial(i);
    });
  }

  status(): RedundancyPeerStatus[] {
    const peers: RedundancyPeerStatus[] = this.#cfg.peers.map((p, i) => {
      const name = this.#slotName[i] ?? null;
      const link = name ? this.#active.get(name) : undefined;
      return { name, address: formatHostPort(p), connected: !!link?.view, role: link?.view?.role ?? null };
    });
    // Members that linked to us but whose address we have not dialed yet; then those that did and are gone.
    for (const [name, link] of this.#active) {
      if (!peers.some((p) => p.name === name)) {
        const free = peers.find((p) => p.name === null && !p.connected);
        if (free) Object.assign(free, { name, connected: !!link.view, role: link.view?.role ?? null });
      }
    }
    for (const name of this.#everLinked) {
      if (!peers.some((p) => p.name === name)) {
        const free = peers.find((p) => p.name === null && !p.connected);
        if (free) free.name = name;
      }
    }
    return peers;
  }

  #hooks(): PeerLinkHooks {
    return {
      admit: (hello, ip) => this.#admit(hello, ip),
      accept: (welcome) => this.#checkMember(welcome),
      linked: (hello) => this.#linked(hello),
      onKnown: () => {},
      onReady: (link) => this.#onReady(link),
      onMessage: (link, m) => {
        if (this.#active.get(link.name) === link) this.#events.onMessage(link, m);
      },
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
        onKnown: (welcome) => {
          this.#slotName[i] = welcome.name;
        },
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

  /**
   * The process that sent `hello` is already linked here: the new connection is a redial. No timing enters this: if
   * the dialer has in fact lost that link, its close reaches this side (or the link goes silent for 3 heartbeats),
   * and the next redial links; a stall here must not make a redial replace a live link.
   */
  #linked(hello: MemberInfo): boolean {
    const old = this.#active.get(hello.name);
    return old !== undefined && old.ready && old.remote!.boot === hello.boot;
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
      // Both dialed at once (the same process on both links): keep the link dialed by the lower order, on both
      // sides alike. A link from another process of that member replaces the old one: it restarted, and the old
      // link is a dead process's, whoever dialed it.
      const by = (l: PeerLink) => (l.dialed ? this.#self.order : l.remote!.order);
      if (old.remote!.boot === link.remote!.boot && by(old) < by(link)) {
        link.close('duplicate link');
        return;
      }
      // The same member, a new link: what it last said stands until it speaks again (no gap in the quorum).
      link.view ??= old.view;
      this.#active.set(name, link);
      old.close('replaced by a new link');
    } else this.#active.set(name, link);
    this.#everLinked.add(name);
    this.#log.info({ event: 'peer-up', peer: name, address: link.remoteIp }, `peer ${name} linked`);
    this.#reported.add(link);
    this.#events.onReady(link);
  }

  #onClose(link: PeerLink, reason: string): void {
    this.#handshaking.delete(link);
    if (reason === ALREADY_LINKED) {
      this.#log.debug({ event: 'peer-known', address: link.remoteIp }, `peer link from ${link.remoteIp}: already linked`);
    } else if (link.remote && reason !== 'duplicate link' && reason !== 'shutdown') {
      const level = this.#active.get(link.name) === link ? 'warn' : 'debug';
      this.#log[level]({ event: 'peer-down', peer: link.name, reason }, `peer ${link.name} link closed: ${reason}`);
    } else if (!link.remote && reason !== 'shutdown' && reason !== 'link closed') {
      this.#log.warn({ event: 'peer-refused', address: link.remoteIp, reason }, `peer link from ${link.remoteIp} refused: ${reason}`);
    }
    if (this.#active.get(link.name) === link) this.#active.delete(link.name);
    if (this.#reported.has(link)) this.#events.onClose(link, reason);
  }
}
