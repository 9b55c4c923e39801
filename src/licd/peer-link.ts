import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import { plainIp } from '../common/allow-list.ts';
import { LineDecoder } from '../common/line-decoder.ts';
import type { Logger } from '../common/logger.ts';
import { PEER_MAX_LINE, PEER_PROTO, encodePeerMessage, parsePeerMessage, type MemberInfo, type PeerMessage, type PeerRole } from './peer-messages.ts';

/** What a member last said about itself in a heartbeat. */
export interface PeerView {
  role: PeerRole;
  term: number;
  seq: number;
  voted: number;
  master: string | null;
}

export interface PeerLinkHooks {
  /** Accepting side: the verified hello; returns why the peer is refused, or null to admit it. */
  admit(hello: MemberInfo, remoteIp: string): string | null;
  /** Dialing side: checks the welcome of the member it dialed; returns why it is refused, or null. */
  accept(welcome: MemberInfo): string | null;
  /** Accepting side, for an admitted hello: this member already has a live link to that same process. */
  linked(hello: MemberInfo): boolean;
  /** Dialing side: the member dialed (verified) answered that it already has a live link to this process. */
  onKnown(welcome: MemberInfo): void;
  onReady(link: PeerLink): void;
  onMessage(link: PeerLink, m: PeerMessage): void;
  onClose(link: PeerLink, reason: string): void;
}

export interface PeerLinkOptions {
  self: MemberInfo;
  secret: string | null;
  heartbeat: number;
  logger: Logger;
}

export type PeerLinkState = 'handshake' | 'ready' | 'closed';

/** The close reason of a redial answered `known`: the live link stays; logged at debug only. */
export const ALREADY_LINKED = 'already linked';

/** Both sides' proofs cover the other side's fresh nonce, so a recorded handshake cannot be replayed. */
function mac(secret: string | null, kind: string, nonce: string, m: MemberInfo): string {
  if (secret === null) return '';
  return createHmac('sha256', secret).update(`${kind}|${nonce}|${m.name}|${m.order}|${m.mode}|${m.addr}|${m.boot}`).digest('hex');
}

/** Constant-time comparison whatever the lengths (both sides are hashed to 32 bytes first). */
function sameSecretProof(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

/**
 * One connection between two members of a redundant set: the challenge / HMAC handshake, then JSON lines both
 * ways. A malformed line, an unexpected message before the handshake, or a silence of 3 heartbeats closes it;
 * closing is reported once through `onClose` and never touches license state by itself.
 */
export class PeerLink {
  readonly dialed: boolean;
  readonly #socket: Socket;
  readonly #opts: PeerLinkOptions;
  readonly #hooks: PeerLinkHooks;
  readonly #decoder: LineDecoder;
  readonly #nonce = randomBytes(16).toString('hex');
  #state: PeerLinkState = 'handshake';
  remote: MemberInfo | null = null;
  view: PeerView | null = null;
  lastHeard = Date.now();
  readonly remoteIp: string;
  readonly #handshakeTimer: NodeJS.Timeout;

  constructor(socket: Socket, dialed: boolean, opts: PeerLinkOptions, hooks: PeerLinkHooks) {
    this.#socket = socket;
    this.dialed = dialed;
    this.#opts = opts;
    this.#hooks = hooks;
    this.remoteIp = plainIp(socket.remoteAddress);
    this.#decoder = new LineDecoder(
      { onLine: (l) => this.#line(l), onError: () => this.close('peer line too long') },
      PEER_MAX_LINE,
    );
    socket.setNoDelay(true);
    socket.on('data', (c: Buffer) => this.#decoder.write(c));
    socket.on('error', (err: NodeJS.ErrnoException) => this.close(`link error: ${err.code ?? err.message}`));
    socket.on('close', () => this.close('link closed'));
    this.#handshakeTimer = setTimeout(() => this.close('handshake timed out'), Math.max(2_000, 3 * opts.heartbeat));
    this.#handshakeTimer.unref();
    if (!dialed) this.#write({ t: 'challenge', v: PEER_PROTO, nonce: this.#nonce });
  }

  get state(): PeerLinkState {
    return this.#state;
  }

  get ready(): boolean {
    return this.#state === 'ready';
  }

  get name(): string {
    return this.remote?.name ?? '?';
  }

  send(m: PeerMessage): void {
    if (this.#state === 'ready') this.#write(m);
  }

  #write(m: PeerMessage): void {
    if (!this.#socket.destroyed) this.#socket.write(encodePeerMessage(m));
  }

  /**
   * Closes for a reason (logged by the owner through onClose); a second call does nothing. `flush`: what was written
   * is delivered first (the `known` welcome).
   */
  close(reason: string, flush = false): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    clearTimeout(this.#handshakeTimer);
    this.#decoder.stop();
    if (flush) this.#socket.destroySoon();
    else this.#socket.destroy();
    this.#hooks.onClose(this, reason);
  }

  /** How long the peer has been silent (any line counts), for the 3-heartbeat rule. */
  silentFor(now: number): number {
    return now - this.lastHeard;
  }

  #line(line: string): boolean {
    if (this.#state === 'closed') return false;
    const m = parsePeerMessage(line);
    if (!m) {
      this.#opts.logger.warn({ event: 'peer-malformed', peer: this.remote?.name, address: this.remoteIp, line: line.slice(0, 200) }, 'malformed peer message: link closed');
      this.close('malformed peer message');
      return false;
    }
    this.lastHeard = Date.now();
    if (this.#state === 'handshake') this.#handshake(m);
    else if (m.t === 'challenge' || m.t === 'hello' || m.t === 'welcome') this.close(`unexpected ${m.t} after the handshake`);
    else this.#hooks.onMessage(this, m);
    return (this.#state as PeerLinkState) !== 'closed';
  }

  #handshake(m: PeerMessage): void {
    const self = this.#opts.self;
    const secret = this.#opts.secret;
    if (this.dialed && m.t === 'challenge') {
      if (m.v !== PEER_PROTO) return this.close(`peer protocol ${m.v} not supported`);
      this.#write({ t: 'hello', ...self, nonce: this.#nonce, mac: mac(secret, 'hello', m.nonce, self) });
      return;
    }
    if (this.dialed && m.t === 'welcome') {
      const info = memberOf(m);
      const known = m.known === true;
      if (!sameSecretProof(m.mac, mac(secret, known ? 'known' : 'welcome', this.#nonce, info))) return this.close('peer failed the secret check');
      const why = this.#hooks.accept(info);
      if (why) return this.close(why);
      if (known) {
        this.#hooks.onKnown(info);
        return this.close(ALREADY_LINKED);
      }
      return this.#ready(info);
    }
    if (!this.dialed && m.t === 'hello') {
      const info = memberOf(m);
      if (!sameSecretProof(m.mac, mac(secret, 'hello', this.#nonce, info))) return this.close('peer failed the secret check');
      const why = this.#hooks.admit(info, this.remoteIp);
      if (why) return this.close(why);
      // A redial by a process this member is linked to (it dials every address whose member it has not learned, and
      // a NAT or relay hides which one that is): the answer names this member, the live link and what it carries
      // (followers, acknowledgements) stay. Replacing it would leave the set without quorum for a moment.
      if (this.#hooks.linked(info)) {
        this.#write({ t: 'welcome', ...self, known: true, mac: mac(secret, 'known', m.nonce, self) });
        return this.close(ALREADY_LINKED, true);
      }
      this.#write({ t: 'welcome', ...self, mac: mac(secret, 'welcome', m.nonce, self) });
      return this.#ready(info);
    }
    this.close(`unexpected ${m.t} during the handshake`);
  }

  #ready(info: MemberInfo): void {
    clearTimeout(this.#handshakeTimer);
    this.remote = info;
    this.#state = 'ready';
    this.#hooks.onReady(this);
  }
}

function memberOf(m: MemberInfo): MemberInfo {
  return { name: m.name, order: m.order, mode: m.mode, addr: m.addr, license: m.license, tokens: m.tokens, boot: m.boot };
}
