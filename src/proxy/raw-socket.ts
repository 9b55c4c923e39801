/**
 * A proxied socket on libuv's TCP handle directly (Node's `tcp_wrap` binding), without net.Socket's streams.
 *
 * A net.Socket is a Duplex: a ReadableState, a WritableState, an EventEmitter and a dozen closures and buffers per
 * socket, and every read, write, end and close goes through the stream machinery. A short license transaction
 * (accept, connect, three request/answer pairs, close) spent about 110 us of user CPU in licproxy against about
 * 20 us in HAProxy, for the same system time; the same transaction on bare handles costs about 30 us. RawSocket
 * keeps only what Connection uses: reads into the shared buffer of relay.ts (the handle's `onread` returns the
 * buffer of the next read, like net.Socket's `onread` option), writes that complete at once on a fast peer
 * (libuv tries the write first; a write the kernel did not take whole is queued and reported by `oncomplete`),
 * end() as a shutdown after the queued writes, close and reset.
 *
 * The events and properties Connection reads are named as on net.Socket ('connect', 'end', 'error', 'close',
 * 'drain'; destroyed, readableEnded, writableLength...), with one listener per event, so the same module-level
 * handlers serve both kinds of socket. The binding comes from node-internals.ts: when it is missing, differs
 * (another Node) or is switched off (LICPROXY_RAW_HANDLES=0), `rawTcp` is null and every socket is a net.Socket,
 * which behaves the same.
 */
import { isIP } from 'node:net';
import { getSystemErrorName } from 'node:util';
import { rawTcp, type TcpHandle } from './node-internals.ts';
import { nextReadBuffer, sharedReadBuffer, type ReadCallback } from './relay.ts';

/** A TCP handle with the RawSocket it belongs to. */
type Handle = TcpHandle & { [kRaw]?: RawSocket };

interface ConnectReq {
  oncomplete: (this: ConnectReq, status: number, handle: Handle) => void;
  address: string;
  port: number;
}
interface WriteReq {
  handle: Handle | null;
  oncomplete: (this: WriteReq, status: number) => void;
  async: boolean;
  buffer: Uint8Array | null;
}
interface ShutdownReq {
  handle: Handle;
  oncomplete: (this: ShutdownReq, status: number) => void;
}

const kRaw = Symbol('licproxy.raw');
/** What a detached RawSocket holds instead of its handle (never called: see detach). */
const DETACHED = {} as Handle;

const UV_EOF = -4095;
/** write() answers false (back-pressure) from this many queued bytes, as net.Socket's default highWaterMark. */
const HIGH_WATER = 16 * 1024;

const enum F {
  Connecting = 1,
  Paused = 2,
  Reading = 4,
  ReadEnded = 8,
  /** end() was called. */
  WriteEnded = 16,
  ShutdownSent = 32,
  /** The shutdown completed: this side's FIN is out. */
  Finished = 64,
  Destroyed = 128,
  Errored = 256,
  NeedDrain = 512,
}

type Listener = (...args: never[]) => void;
/** How a listener is called (net.Socket's signatures: no argument, `hadError`, an Error). */
type Handler = (this: RawSocket, arg?: unknown) => void;
export type RawEvent = 'connect' | 'end' | 'error' | 'close' | 'drain';

export class RawSocket {
  bytesRead = 0;
  bytesWritten = 0;
  #h: Handle;
  #f: number;
  /** Writes the kernel did not take at once, in flight. */
  #pending = 0;
  /** The buffer the handle reads into next (kept referenced: the handle holds only its address). */
  #buf: Uint8Array | null = null;
  #read: ReadCallback | null = null;
  #onConnect: Handler | null = null;
  #onEnd: Handler | null = null;
  #onError: Handler | null = null;
  #onClose: Handler | null = null;
  #onDrain: Handler | null = null;
  #peer: { address?: string; port?: number } | null = null;

  private constructor(h: Handle, flags: number) {
    this.#h = h;
    this.#f = flags;
    h[kRaw] = this;
  }

  /** An accepted connection's handle; it reads nothing until a reader is set and resume() is called. */
  static accepted(h: TcpHandle): RawSocket {
    return new RawSocket(h, F.Paused);
  }

  /**
   * Connects to a literal IP address; null for a host name (the caller uses net.connect, which resolves it).
   * Reads go to `read` from the shared buffer once connected.
   */
  static connect(host: string, port: number, noDelay: boolean, keepAliveMs: number, read: ReadCallback): RawSocket | null {
    const b = rawTcp!;
    const family = isIP(host);
    if (family === 0) return null;
    const h = new b.TCP(b.SOCKET);
    const s = new RawSocket(h, F.Connecting);
    s.#read = read;
    // Stored by libuv and applied when it creates the socket, as net.Socket does.
    if (noDelay) h.setNoDelay(true);
    if (keepAliveMs > 0) h.setKeepAlive(true, Math.floor(keepAliveMs / 1000));
    const req = new b.TCPConnectWrap() as ConnectReq;
    req.oncomplete = afterConnect;
    req.address = host;
    req.port = port;
    const err = family === 4 ? h.connect(req, host, port) : h.connect6(req, host, port);
    if (err !== 0) process.nextTick(connectFailed, s, err);
    else s.#readFromConnect();
    return s;
  }

  get destroyed(): boolean {
    return (this.#f & F.Destroyed) !== 0;
  }
  get connecting(): boolean {
    return (this.#f & F.Connecting) !== 0;
  }
  get readableEnded(): boolean {
    return (this.#f & F.ReadEnded) !== 0;
  }
  get writableEnded(): boolean {
    return (this.#f & F.WriteEnded) !== 0;
  }
  /** Bytes accepted by write() that the kernel has not taken yet. */
  get writableLength(): number {
    return this.destroyed ? 0 : this.#h.writeQueueSize;
  }
  /** Nothing is ever buffered on the read side: a read is relayed in its callback. */
  get readableLength(): number {
    return 0;
  }
  get remoteAddress(): string | undefined {
    return this.#peername().address;
  }
  get remotePort(): number | undefined {
    return this.#peername().port;
  }
  get localAddress(): string | undefined {
    return this.#sockname().address;
  }
  get localPort(): number | undefined {
    return this.#sockname().port;
  }

  #peername(): { address?: string; port?: number } {
    if (this.#peer === null) {
      const out: { address?: string; port?: number } = {};
      if (!this.destroyed) this.#h.getpeername(out);
      if (out.address !== undefined) this.#peer = out;
      return out;
    }
    return this.#peer;
  }

  #sockname(): { address?: string; port?: number } {
    const out: { address?: string; port?: number } = {};
    if (!this.destroyed) this.#h.getsockname(out);
    return out;
  }

  on(event: RawEvent, listener: Listener): this {
    const fn = listener as unknown as Handler;
    if (event === 'connect') this.#onConnect = fn;
    else if (event === 'end') this.#onEnd = fn;
    else if (event === 'error') this.#onError = fn;
    else if (event === 'close') this.#onClose = fn;
    else this.#onDrain = fn;
    return this;
  }

  /** Only 'drain' is listened to once (back-pressure); the other events fire once anyway. */
  once(event: RawEvent, fn: Listener): this {
    return this.on(event, fn);
  }

  /** Where reads go: `read(n, buf)` with `this` = this socket, from the shared buffer (relay.ts). */
  setReader(read: ReadCallback): void {
    this.#read = read;
  }

  isPaused(): boolean {
    return (this.#f & F.Paused) !== 0;
  }

  pause(): this {
    this.#f |= F.Paused;
    this.#readStop();
    return this;
  }

  resume(): this {
    this.#f &= ~F.Paused;
    this.#readStart();
    return this;
  }

  setKeepAlive(on: boolean, delayMs = 0): this {
    if (!this.destroyed) this.#h.setKeepAlive(on, Math.floor(delayMs / 1000));
    return this;
  }

  setNoDelay(on = true): this {
    if (!this.destroyed) this.#h.setNoDelay(on);
    return this;
  }

  write(data: Uint8Array | string): boolean {
    if ((this.#f & (F.Destroyed | F.WriteEnded)) !== 0) return false;
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    const b = rawTcp!;
    const req = (syncReq ??= newWriteReq());
    const h = this.#h;
    req.handle = h;
    const err = h.writeBuffer(req, buf);
    if (err !== 0) {
      req.handle = null;
      this.#destroy(errnoError(err, 'write'), false);
      return false;
    }
    this.bytesWritten += buf.length;
    if (b.state[b.kLastWriteWasAsync] !== 0) {
      // libuv queued the rest: this request object now belongs to that write, and the buffer must stay alive.
      req.buffer = buf;
      syncReq = newWriteReq();
      this.#pending++;
      if (h.writeQueueSize >= HIGH_WATER) {
        this.#f |= F.NeedDrain;
        return false;
      }
    } else {
      req.handle = null;
    }
    return true;
  }

  /** Half-close: FIN after what was written; the read side stays open. */
  end(data?: Uint8Array | string): this {
    if (data !== undefined) this.write(data);
    if ((this.#f & (F.Destroyed | F.WriteEnded)) !== 0) return this;
    this.#f |= F.WriteEnded;
    if (this.#pending === 0 && !this.connecting) this.#shutdown();
    return this;
  }

  destroy(): this {
    this.#destroy(null, false);
    return this;
  }

  /** Writes handed to libuv whose completion has not been reported yet (their callbacks still to come). */
  get writesInFlight(): number {
    return this.#pending;
  }

  /** The socket's descriptor, for the native relay to duplicate (-1 when none). */
  get fd(): number {
    return this.destroyed ? -1 : this.#h.fd;
  }

  /**
   * Closes this handle without a word to the owner: no 'close' or any other event. The native relay holds a
   * duplicate of the descriptor, so the connection itself stays open (native-relay.ts).
   */
  detach(): void {
    if (this.destroyed) return;
    this.#f = (this.#f | F.Destroyed) & ~F.Reading;
    this.#read = null;
    this.#buf = null;
    this.#onConnect = this.#onEnd = this.#onError = this.#onClose = this.#onDrain = null;
    this.#h.close();
    // Let the closed handle (and its uv_tcp_t) be collected while this object lives on in its Connection; every
    // use of #h below is behind a `destroyed` check.
    this.#h = DETACHED;
  }

  /** Closes with RST (SO_LINGER 0). */
  resetAndDestroy(): this {
    this.#destroy(null, true);
    return this;
  }

  #readStart(): void {
    const f = this.#f;
    if ((f & (F.Reading | F.Paused | F.ReadEnded | F.Destroyed | F.Connecting)) !== 0 || this.#read === null) return;
    this.#readIntoSharedBuffer();
    this.#f |= F.Reading;
    const err = this.#h.readStart();
    if (err !== 0) this.#destroy(errnoError(err, 'read'), false);
  }

  /**
   * Reading asked for together with the connect: libuv watches the socket for both in one epoll_ctl ADD and turns
   * the write interest off once connected (a MOD). Started after the connect instead, the read interest comes
   * after libuv dropped the descriptor's interest lazily, and costs an ADD answered EEXIST and then a MOD: one
   * system call more on every upstream connection. libuv reports the connect before any read on the socket.
   */
  #readFromConnect(): void {
    this.#readIntoSharedBuffer();
    if (this.#h.readStart() === 0) this.#f |= F.Reading;
  }

  /** Reads land in the shared buffer (relay.ts), set once per handle. */
  #readIntoSharedBuffer(): void {
    if (this.#buf !== null) return;
    this.#buf = sharedReadBuffer;
    this.#h.onread = onRead;
    this.#h.useUserBuffer(sharedReadBuffer);
  }

  #readStop(): void {
    if ((this.#f & F.Reading) === 0) return;
    this.#f &= ~F.Reading;
    if (!this.destroyed) this.#h.readStop();
  }

  #shutdown(): void {
    this.#f |= F.ShutdownSent;
    const req = new rawTcp!.ShutdownWrap() as ShutdownReq;
    req.handle = this.#h;
    req.oncomplete = afterShutdown;
    const err = this.#h.shutdown(req);
    if (err !== 0) this.#destroy(errnoError(err, 'shutdown'), false);
  }

  #destroy(err: Error | null, reset: boolean): void {
    if (this.destroyed) return;
    this.#f = (this.#f | F.Destroyed | (err !== null ? F.Errored : 0)) & ~F.Reading;
    const h = this.#h;
    // A reset is refused by libuv once a shutdown is under way: that side has sent its FIN, close it plainly.
    if (reset && (this.#f & F.ShutdownSent) === 0 && h.reset(onClosed) === 0) {
      /* closing with RST */
    } else {
      h.close(onClosed);
    }
    // As net.Socket: 'error' on the next tick, 'close' once the handle is closed (after it).
    if (err !== null) process.nextTick(emitError, this, err);
  }

  // ---- called from the handle's callbacks ----

  /** @internal */
  _read(): Uint8Array | undefined {
    const b = rawTcp!;
    const n = b.state[b.kReadBytesOrError]!;
    if (n > 0) {
      if (this.destroyed) return undefined;
      this.bytesRead += n;
      const buf = this.#buf!;
      this.#read!.call(this as never, n, buf);
      const next = nextReadBuffer();
      if (next !== buf) {
        this.#buf = next;
        return next;
      }
      return undefined;
    }
    if (n === 0) return undefined;
    if (n !== UV_EOF) {
      this.#destroy(errnoError(n, 'read'), false);
      return undefined;
    }
    this.#readStop();
    this.#f |= F.ReadEnded;
    this.#onEnd?.call(this);
    if ((this.#f & F.Finished) !== 0) this.#destroy(null, false);
    return undefined;
  }

  /** @internal */
  _connected(status: number): void {
    if (this.destroyed) return;
    this.#f &= ~F.Connecting;
    if (status !== 0) return this.#destroy(errnoError(status, 'connect'), false);
    this.#onConnect?.call(this);
    if ((this.#f & F.WriteEnded) !== 0 && this.#pending === 0 && (this.#f & F.ShutdownSent) === 0) this.#shutdown();
    this.#readStart();
  }

  /** @internal */
  _written(status: number): void {
    this.#pending--;
    if (this.destroyed) return;
    if (status < 0) return this.#destroy(errnoError(status, 'write'), false);
    if (this.#pending !== 0) return;
    if ((this.#f & F.NeedDrain) !== 0) {
      this.#f &= ~F.NeedDrain;
      const d = this.#onDrain;
      this.#onDrain = null;
      d?.call(this);
    }
    if ((this.#f & (F.WriteEnded | F.ShutdownSent | F.Destroyed)) === F.WriteEnded) this.#shutdown();
  }

  /** @internal */
  _shutdownDone(status: number): void {
    if (this.destroyed) return;
    // ENOTCONN: the peer reset meanwhile; the read side reports it.
    if (status < 0 && getSystemErrorName(status) !== 'ENOTCONN') return this.#destroy(errnoError(status, 'shutdown'), false);
    this.#f |= F.Finished;
    if ((this.#f & F.ReadEnded) !== 0) this.#destroy(null, false);
  }

  /** @internal */
  _closed(): void {
    this.#buf = null;
    this.#onClose?.call(this, (this.#f & F.Errored) !== 0);
  }

  /** @internal */
  _error(err: Error): void {
    this.#onError?.call(this, err);
  }
}

function newWriteReq(): WriteReq {
  const r = new rawTcp!.WriteWrap() as WriteReq;
  r.handle = null;
  r.oncomplete = afterWrite;
  r.async = false;
  r.buffer = null;
  return r;
}

/**
 * The request object given to every write: a write that the kernel takes at once never uses it (libuv's try-write
 * path), so one object serves them all until a write is queued and keeps it.
 */
let syncReq: WriteReq | null = null;

function onRead(this: Handle): Uint8Array | undefined {
  return this[kRaw]!._read();
}
function afterConnect(this: ConnectReq, status: number, handle: Handle): void {
  handle[kRaw]!._connected(status);
}
function afterWrite(this: WriteReq, status: number): void {
  const h = this.handle!;
  this.handle = null;
  this.buffer = null;
  h[kRaw]!._written(status);
}
function afterShutdown(this: ShutdownReq, status: number): void {
  this.handle[kRaw]!._shutdownDone(status);
}
function onClosed(this: Handle): void {
  this[kRaw]!._closed();
}
function emitError(s: RawSocket, err: Error): void {
  s._error(err);
}
/** A connect that failed at once (bad address...): reported like any failed connect, asynchronously. */
function connectFailed(s: RawSocket, status: number): void {
  s._connected(status);
}

function errnoError(code: number, syscall: string): NodeJS.ErrnoException {
  let name: string;
  try {
    name = getSystemErrorName(code);
  } catch {
    name = `E${-code}`;
  }
  const e = new Error(`${syscall} ${name}`) as NodeJS.ErrnoException;
  e.code = name;
  e.errno = code;
  e.syscall = syscall;
  return e;
}
