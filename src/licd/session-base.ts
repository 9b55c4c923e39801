import type { Socket } from 'node:net';
import { plainIp } from '../common/allow-list.ts';
import { LineDecoder } from '../common/line-decoder.ts';
import { decodeProxyHeader } from '../common/proxy-protocol.ts';
import type { LicdContext } from './context.ts';
import { ANSWER } from './protocol.ts';

/** An answer whose text is known later (a grant waiting for its replication); later answers queue behind it. */
export interface AnswerSlot {
  text: string | null;
}

/**
 * One connection to a daemon port: PROXY header, allow list, line framing, back-pressure, idle tracking and a
 * close that releases the session's licenses exactly once. Subclasses answer lines and release what they hold.
 */
export abstract class SessionBase {
  protected readonly ctx: LicdContext;
  protected readonly socket: Socket;
  readonly #decoder: LineDecoder;
  /** Client address: the socket's peer, or the PROXY header's source. */
  address: string;
  clientPort: number;
  readonly since = Date.now();
  lastActivity = Date.now();
  #closed = false;
  /** Bytes of a PROXY header received so far (only while `proxy_protocol` waits for it). */
  #proxyBuf: Buffer | null = null;
  /** Answers held back behind an unfilled slot, so answers stay in request order; null (the usual case) when none. */
  #out: Array<string | AnswerSlot> | null = null;

  constructor(ctx: LicdContext, socket: Socket) {
    this.ctx = ctx;
    this.socket = socket;
    this.address = plainIp(socket.remoteAddress);
    this.clientPort = socket.remotePort ?? 0;
    this.#decoder = new LineDecoder({
      onLine: (line) => this.#line(line),
      onError: () => this.reject(ANSWER.LINE_TOO_LONG, 'line too long'),
    });
  }

  /** Starts reading; separate from the constructor so a rejection never runs before subclass fields exist. */
  start(): void {
    const socket = this.socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#data(chunk));
    socket.on('error', () => this.close('error'));
    socket.on('close', () => this.close('closed'));
    if (this.ctx.proxyProtocol) this.#proxyBuf = Buffer.alloc(0);
    else this.#checkAllowed();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Answers one line. Runs after the line counted as activity. */
  protected abstract handle(line: string): void;

  /** Frees everything the session holds; called exactly once, before the socket goes. */
  protected abstract release(reason: string): void;

  /** A later line in the same chunk must not be answered once the session is closing. */
  #line(line: string): boolean {
    if (this.#closed) return false;
    this.touch();
    this.handle(line);
    return !this.#closed;
  }

  /** Activity on this connection; token sessions also refresh the license session they belong to. */
  touch(): void {
    this.lastActivity = Date.now();
  }

  #data(chunk: Buffer): void {
    if (this.#closed) return;
    if (this.#proxyBuf) {
      const rest = this.#proxyHeader(chunk);
      if (!rest) return;
      chunk = rest;
    }
    this.#decoder.write(chunk);
    // A client that pipelines requests without reading answers must not make the daemon buffer without bound.
    if (this.socket.writableNeedDrain && !this.#closed) {
      this.socket.pause();
      this.socket.once('drain', () => this.socket.resume());
    }
  }

  /** Consumes the PROXY header; returns the bytes after it, or null while it is incomplete or was rejected. */
  #proxyHeader(chunk: Buffer): Buffer | null {
    const buf = this.#proxyBuf!.length ? Buffer.concat([this.#proxyBuf!, chunk]) : chunk;
    const r = decodeProxyHeader(buf);
    if (r.kind === 'more') {
      this.#proxyBuf = buf;
      return null;
    }
    this.#proxyBuf = null;
    if (r.kind === 'error') {
      this.ctx.logger.warn({ address: this.address, reason: r.message }, 'connection without a valid PROXY header closed');
      this.reject(ANSWER.NOT_ALLOWED, 'bad PROXY header');
      return null;
    }
    if (r.source) {
      this.address = plainIp(r.source.address);
      this.clientPort = r.source.port;
    }
    if (!this.#checkAllowed()) return null;
    return buf.subarray(r.consumed);
  }

  #checkAllowed(): boolean {
    const allow = this.ctx.allow;
    if (!allow || allow.allows(this.address)) return true;
    this.ctx.logger.info({ address: this.address }, `DENIED: connection from ${this.address} not in allow list`);
    this.reject(ANSWER.NOT_ALLOWED, 'not allowed');
    return false;
  }

  send(answer: string): void {
    if (this.#closed) return;
    if (this.#out) this.#out.push(answer);
    else this.socket.write(answer);
  }

  /** Reserves the place of an answer that is not known yet (see `fill`). */
  protected hold(): AnswerSlot {
    const slot: AnswerSlot = { text: null };
    (this.#out ??= []).push(slot);
    return slot;
  }

  /** Gives a held answer its text and writes every answer that is now in order. */
  protected fill(slot: AnswerSlot, text: string): void {
    slot.text = text;
    const out = this.#out;
    if (!out || this.#closed) return;
    while (out.length > 0) {
      const head = out[0]!;
      const t = typeof head === 'string' ? head : head.text;
      if (t === null) return;
      out.shift();
      this.socket.write(t);
    }
    this.#out = null;
  }

  /** Answers once more, frees everything, and closes after the answer is flushed. */
  reject(answer: string, reason: string): void {
    if (this.#closed) return;
    this.socket.write(answer);
    this.end(reason);
  }

  /** Frees everything and closes gracefully (the pending answers are flushed first). */
  end(reason: string): void {
    if (this.#closed) return;
    this.#finish(reason);
    this.socket.destroySoon();
  }

  /** Frees everything and drops the connection at once (heartbeat timeout, peer gone). */
  close(reason: string): void {
    if (this.#closed) return;
    this.#finish(reason);
    this.socket.destroy();
  }

  #finish(reason: string): void {
    this.#closed = true;
    this.#decoder.stop();
    this.#proxyBuf = null;
    this.release(reason);
    this.ctx.forget(this);
  }
}
