/**
 * Every use of Node's internals, in one place: libuv's TCP handles through `process.binding('tcp_wrap')` and
 * `('stream_wrap')` (raw-socket.ts builds its sockets on them), the listening handle's `onconnection` (accepted
 * connections become raw sockets), its `setNoDelay`/`setKeepAlive` (options inherited by accepted sockets), and
 * three private fields of net.Socket (an accepted socket's `onread` buffer, relay.ts). They save about two thirds of
 * the CPU of a short license transaction (raw-socket.ts says how), but no Node release promises them.
 *
 * So each is probed here, and `startupSelfTest()` (node-internals-self-test.ts) relays bytes through them once
 * before the first listener opens; if one is missing or behaves otherwise, `disableNodeInternals()` turns them all
 * off and licproxy runs on plain net.Sockets (public API, the same behaviour, more CPU per connection), with one
 * warning in the log. `LICPROXY_RAW_HANDLES=0` in the environment turns them off from the start.
 */
import { Socket, type Server as NetServer } from 'node:net';

/** The part of node's TCPWrap (a libuv uv_tcp_t) used here. */
export interface TcpHandle {
  /** The socket's descriptor (-1 once closed). */
  readonly fd: number;
  onread: ((this: TcpHandle) => Uint8Array | undefined) | null;
  readonly writeQueueSize: number;
  readStart(): number;
  readStop(): number;
  useUserBuffer(buf: Uint8Array): void;
  writeBuffer(req: object, buf: Uint8Array): number;
  shutdown(req: object): number;
  close(cb?: (this: TcpHandle) => void): void;
  reset(cb?: (this: TcpHandle) => void): number;
  getpeername(out: { address?: string; port?: number }): number;
  getsockname(out: { address?: string; port?: number }): number;
  setNoDelay(on: boolean): number;
  setKeepAlive(on: boolean, delaySeconds: number): number;
  connect(req: object, address: string, port: number): number;
  connect6(req: object, address: string, port: number): number;
}

export interface TcpBinding {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => object;
  WriteWrap: new () => object;
  ShutdownWrap: new () => object;
  SOCKET: number;
  state: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

/** The private symbols of net.Socket that hold its `onread` option. */
interface ReadBufferFields {
  buffer: symbol;
  cb: symbol;
  gen: symbol;
}

/** The operator turned the internals off (LICPROXY_RAW_HANDLES=0). */
export const internalsSwitchedOff = process.env.LICPROXY_RAW_HANDLES === '0';
/** Why the internals are off ('' while they are on). */
export let internalsOff = internalsSwitchedOff ? 'LICPROXY_RAW_HANDLES=0' : '';

/** The TCP bindings, or null: every socket is a net.Socket (read at every use: the self-test may turn it off). */
export let rawTcp: TcpBinding | null = internalsOff ? null : probeBinding();
let readBufferFields: ReadBufferFields | null = internalsOff ? null : probeReadBufferFields();
if (!internalsOff && rawTcp === null) disableNodeInternals('this Node has no usable tcp_wrap binding');

/** Turns every internal off for the life of the process (connections already on raw sockets carry on). */
export function disableNodeInternals(why: string): void {
  internalsOff ||= why;
  rawTcp = null;
  readBufferFields = null;
}

function probeBinding(): TcpBinding | null {
  const pb = (process as unknown as { binding?: (name: string) => Record<string, unknown> }).binding;
  if (typeof pb !== 'function') return null;
  // process.binding is deprecated (DEP0111, documentation-only; a warning under --pending-deprecation): it is used
  // knowingly here, and the self-test covers it, so the warning would only tell the operator nothing.
  const quiet = process.noDeprecation;
  process.noDeprecation = true;
  try {
    const tcp = pb('tcp_wrap') as { TCP?: TcpBinding['TCP']; TCPConnectWrap?: TcpBinding['TCPConnectWrap']; constants?: { SOCKET?: number } };
    const sw = pb('stream_wrap');
    const b = {
      TCP: tcp.TCP!,
      TCPConnectWrap: tcp.TCPConnectWrap!,
      WriteWrap: sw.WriteWrap as TcpBinding['WriteWrap'],
      ShutdownWrap: sw.ShutdownWrap as TcpBinding['ShutdownWrap'],
      SOCKET: tcp.constants?.SOCKET as number,
      state: sw.streamBaseState as Int32Array,
      kReadBytesOrError: sw.kReadBytesOrError as number,
      kLastWriteWasAsync: sw.kLastWriteWasAsync as number,
    };
    if (typeof b.TCP !== 'function' || typeof b.TCPConnectWrap !== 'function' || typeof b.WriteWrap !== 'function') return null;
    if (typeof b.ShutdownWrap !== 'function' || typeof b.SOCKET !== 'number' || !(b.state instanceof Int32Array)) return null;
    if (typeof b.kReadBytesOrError !== 'number' || typeof b.kLastWriteWasAsync !== 'number') return null;
    const p = b.TCP.prototype as unknown as Record<string, unknown>;
    for (const m of ['readStart', 'readStop', 'useUserBuffer', 'writeBuffer', 'shutdown', 'close', 'reset', 'getpeername', 'getsockname', 'setNoDelay', 'setKeepAlive', 'connect', 'connect6']) {
      if (typeof p[m] !== 'function') return null;
    }
    return b;
  } catch {
    return null;
  } finally {
    process.noDeprecation = quiet;
  }
}

/** Found by their descriptions on a socket instance (net.Socket's constructor sets them from `onread`). */
function probeReadBufferFields(): ReadBufferFields | null {
  const probe = new Socket();
  const own = Object.getOwnPropertySymbols(probe);
  const find = (d: string): symbol | undefined => own.find((s) => s.description === d);
  const buffer = find('kBuffer');
  const cb = find('kBufferCb');
  const gen = find('kBufferGen');
  probe.destroy();
  return buffer && cb && gen ? { buffer, cb, gen } : null;
}

type OnConnection = (this: unknown, status: number, client?: TcpHandle) => void;

/**
 * Hands the listener's accepted connections to `take` as bare handles (before net.Server wraps them in a
 * net.Socket); `take` answers false to leave one to net.Server after all. False: not possible (internals off, or
 * this listener has no such handle), net.Server's 'connection' gets them all. net.Server keeps its accept errors.
 */
/** Where interceptAccept keeps net.Server's own `onconnection` on the listening handle. */
const NET_ONCONNECTION = Symbol('licproxy.netOnconnection');

export function interceptAccept(srv: NetServer, take: (client: TcpHandle) => boolean): boolean {
  if (rawTcp === null) return false;
  const h = (srv as unknown as { _handle?: { onconnection?: OnConnection; [NET_ONCONNECTION]?: OnConnection } | null })._handle;
  if (!h || typeof h.onconnection !== 'function') return false;
  // The listener may be handed to another frontend at a reload (adopt): net.Server's own accept is kept once, for
  // every owner, so a second interception never wraps the first.
  const netAccept = (h[NET_ONCONNECTION] ??= h.onconnection);
  h.onconnection = (status: number, client?: TcpHandle): void => {
    // Read at each accept: after disableNodeInternals() every new connection is net.Server's.
    if (status !== 0 || client === undefined || rawTcp === null || !take(client)) netAccept.call(h, status, client);
  };
  return true;
}

/**
 * Sets TCP_NODELAY and SO_KEEPALIVE on the listening socket itself (on Linux, accepted sockets inherit them).
 * False: not possible; then they are set on each accepted socket.
 */
export function setListenerSocketOptions(srv: NetServer, noDelay: boolean, keepAliveMs: number): boolean {
  if (rawTcp === null) return false;
  const h = (srv as unknown as { _handle?: Partial<TcpHandle> | null })._handle;
  if (!h || typeof h.setNoDelay !== 'function' || typeof h.setKeepAlive !== 'function') return false;
  h.setNoDelay(noDelay);
  h.setKeepAlive(keepAliveMs > 0, Math.max(1, Math.floor(keepAliveMs / 1000)));
  return true;
}

/** Whether setListenerSocketOptions() can work here (decided before the listener is created). */
export function listenerSocketOptionsSettable(): boolean {
  return rawTcp !== null;
}

/**
 * Gives an accepted net.Socket that has not read anything yet the `onread` option net.Server cannot pass: reads
 * go to `callback`, into `buffer`, then into what `next()` returns. False: not possible, it stays on streams.
 */
export function setSocketOnread(s: Socket, buffer: Uint8Array, callback: (n: number, buf: Uint8Array) => boolean, next: () => Uint8Array): boolean {
  const fields = readBufferFields;
  const h = (s as unknown as { _handle?: { useUserBuffer?(buf: Uint8Array): void } | null })._handle;
  if (fields === null || !h || typeof h.useUserBuffer !== 'function' || s.readableLength > 0 || s.readableEnded) return false;
  const r = s as unknown as Record<symbol, unknown>;
  if (r[fields.buffer] !== null) return false;
  r[fields.buffer] = buffer;
  r[fields.cb] = callback;
  r[fields.gen] = next;
  h.useUserBuffer(buffer);
  return true;
}

/** A TCP handle opened on a descriptor this process inherited (inherited-sockets.ts), and its bound address. */
export interface DescriptorSocket {
  /** For net.Server.listen(handle): listening on it neither binds nor goes through node:cluster. */
  readonly handle: object;
  readonly address: string;
  readonly port: number;
}

/**
 * Wraps an inherited socket descriptor in a TCP handle (uv_tcp_open), without listening on it, and reads its bound
 * address: Node's public API can listen on a descriptor but not tell its address first, and in a cluster worker
 * `listen({ fd })` asks the primary instead of using the worker's own descriptor. Independent of the self-test
 * (it works with LICPROXY_RAW_HANDLES=0 too). A string: why not.
 */
export function openDescriptorSocket(fd: number): DescriptorSocket | string {
  const pb = (process as unknown as { binding?: (name: string) => Record<string, unknown> }).binding;
  if (typeof pb !== 'function') return 'this Node has no process.binding';
  const quiet = process.noDeprecation;
  process.noDeprecation = true;
  try {
    const tcp = pb('tcp_wrap') as { TCP?: new (type: number) => { open?(fd: number): number; getsockname(out: object): number; close(): void }; constants?: { SERVER?: number } };
    if (typeof tcp.TCP !== 'function' || typeof tcp.constants?.SERVER !== 'number' || typeof tcp.TCP.prototype.open !== 'function') {
      return 'this Node has no usable tcp_wrap binding';
    }
    const handle = new tcp.TCP(tcp.constants.SERVER);
    const err = handle.open!(fd);
    if (err !== 0) {
      handle.close();
      return `cannot open descriptor ${fd} (libuv error ${err})`;
    }
    const out: { address?: string; port?: number; family?: string } = {};
    if (handle.getsockname(out) !== 0 || (out.family !== 'IPv4' && out.family !== 'IPv6') || out.address === undefined || out.port === undefined) {
      return `descriptor ${fd} is not an IPv4/IPv6 TCP socket`;
    }
    return { handle, address: out.address, port: out.port };
  } catch (err) {
    return `descriptor ${fd}: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    process.noDeprecation = quiet;
  }
}
