/**
 * One proxied client connection: places the client (pool.select, queue), connects to the server with retries and
 * redispatch, then forwards bytes unchanged both ways until both sides are done: each side reads into the shared
 * buffer of relay.ts and its read callback writes to the other side; a `false` from write() pauses the reader until
 * the writer's 'drain' (back-pressure); an 'end' is passed on with end() (half-close). This replaces pipe(): no
 * per-read 64 KiB allocation, no Readable buffering, one callback per read (see relay.ts for the measured effect).
 * Handlers are module-level functions attached once per socket; byte counts are read from the sockets at close, so
 * nothing runs per chunk but the callback and the write. Both sides are RawSockets (libuv handles without
 * net.Socket's streams, see raw-socket.ts) where possible, net.Sockets otherwise; the code here is the same for both.
 */
import { connect, type Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';
import { plainIp } from '../common/allow-list.ts';
import { encodeProxyV1, encodeProxyV2 } from '../common/proxy-protocol.ts';
import { ResponseWatch } from '../health/observe-response.ts';
import type { Binding } from './affinity/affinity-table.ts';
import { HandleAffinity } from './affinity/handle-affinity.ts';
import { MAX_FIRST_LINE, readFirstLine, type FirstLineError } from './affinity/first-line.ts';
import { logConnection } from './connection-log.ts';
import type { Closable, EndReason } from './end-reason.ts';
import type { Frontend } from './frontend.ts';
import { releaseAbandonedCheckout } from './license-session/abandoned-checkout.ts';
import { LicenseSession, type SessionHost } from './license-session/license-session.ts';
import type { SessionSeen } from './license-session/session-seen.ts';
import { nativeRelay, RelayStat, type NativeRelay, type RelayOwner } from './native-relay.ts';
import { rawTcp } from './node-internals.ts';
import type { Pool, SelectResult, Waiter } from './pool.ts';
import { RawSocket } from './raw-socket.ts';
import { onreadOption, relay, useSharedReadBuffer, type ReadCallback } from './relay.ts';
import { Server } from './server.ts';
import type { TimedConnection } from './timeout-sweeper.ts';

const kConn = Symbol('licproxy.connection');

/**
 * One side of a connection: a RawSocket (libuv's handle without net.Socket's streams, see raw-socket.ts), or a
 * net.Socket (affinity by handle reads the first line with stream events; a host name to resolve; a Node without
 * the raw binding). Both name what is used here alike.
 */
export interface Side {
  readonly bytesRead: number;
  readonly bytesWritten: number;
  readonly destroyed: boolean;
  readonly connecting: boolean;
  readonly readableEnded: boolean;
  readonly writableEnded: boolean;
  readonly writableLength: number;
  readonly readableLength: number;
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  on(event: 'connect' | 'end' | 'error' | 'close' | 'drain', listener: (...args: never[]) => void): unknown;
  once(event: 'drain', listener: (...args: never[]) => void): unknown;
  write(data: Uint8Array): boolean;
  end(data?: string | Uint8Array): unknown;
  destroy(): unknown;
  resetAndDestroy(): unknown;
  pause(): unknown;
  resume(): unknown;
  isPaused(): boolean;
  setKeepAlive(enable: boolean, initialDelay?: number): unknown;
}
type ConnSocket = Side & { [kConn]: Connection };

const enum State {
  /** Affinity by handle: reading the first line before any server is chosen. */
  Reading,
  /** Affinity by source in a cluster worker: waiting for the primary's binding. */
  Asking,
  Placing,
  Queued,
  Connecting,
  Open,
  Done,
}

/** A promoted connection's pair id once the native relay reported its end (see nativeEnded). */
const NATIVE_DONE = -2;

/** A connection handed to the native relay: its pair, and the byte counts relayed in JavaScript before it. */
interface NativeLink {
  relay: NativeRelay;
  /** The pair id; NATIVE_DONE once ended (then `in` and `out` are the totals). */
  id: number;
  /** Client bytes read and written, server bytes read, at promotion. */
  in: number;
  out: number;
  up: number;
}
/**
 * Reads relayed in JavaScript before a plain connection is handed to the native relay: a short transaction (a
 * request, an answer, two FINs) never gets there and keeps its cheaper path; a connection still talking after this
 * many reads is long-lived and stops paying Node's per-callback cost (native-relay.ts).
 */
const PROMOTE_AFTER_READS = 6;

export class Connection implements Waiter, Closable, TimedConnection, SessionHost, RelayOwner {
  readonly client: Side;
  readonly frontend: Frontend;
  /** The pool and port the frontend pointed to at accept; a reload does not move a connection in flight. */
  readonly pool: Pool;
  readonly portName: string;
  readonly frontendName: string;
  exclude: Server[] | null = null;
  queueTimer: NodeJS.Timeout | null = null;
  /** The server connected to (or last tried). */
  server: Server | null = null;
  /** Affinity (SelectContext): the pool sets these; see SourceAffinity and HandleAffinity. */
  binding: Binding<Server> | null = null;
  handleServer: Server | null = null;
  /** Affinity in a cluster worker: what this connection holds of the primary's table (see remote-affinity.ts). */
  affinityRef: object | null = null;

  #upstream: Side | null = null;
  #state = State.Placing;
  #acceptedAt: number;
  #queuedAt = 0;
  #queueMs = 0;
  #connectStart = 0;
  #connectMs = -1;
  #attempts = 0;
  #end: EndReason | null = null;
  #error: string | null = null;
  #clientClosed = false;
  /** Peer address, read on first use: getpeername is a syscall that a plain round-robin pool never needs. */
  #ip: string | null;
  #port = 0;
  /** Connecting: when the attempt fails. Open: idle timeout, and the activity seen at the last sweep. */
  #deadline = 0;
  #idleMs = 0;
  /** The server sent its FIN: `#idleMs` is now `timeouts.client_fin` (see upstreamEnd). */
  #serverEnded = false;
  /** When the sweeper sets SO_KEEPALIVE on the server side (0 = set at connect, or done). */
  #keepAliveAt = 0;
  #lastBytes = 0;
  #lastActive = 0;
  /** `check.observe: response` only: client bytes that the server leaves unanswered count as a failed check. */
  watch: ResponseWatch | null = null;
  /** Affinity by handle: the bytes read with the first line, sent to the server before anything else. */
  #head: Buffer | null = null;
  /**
   * `protocol: licd`: the start of the connection, watched line by line (route: feature, retry_denied, failover
   * replay); null once it went plain, and always in tcp pools.
   */
  license: LicenseSession | null = null;
  /** `protocol: licd`: what the watched start showed (user, handle id, features), kept for GET /api/sessions. */
  licd: SessionSeen | null = null;
  /** The client's unanswered CHECKOUT was handed to an abandoned-checkout cleanup (see #releaseAbandoned). */
  #abandonedReleased = false;
  /** Reads left before promotion to the native relay (0: not by reads; see PROMOTE_AFTER_READS). */
  readsBeforeNative = 0;
  /** Handed to the native relay (null: relayed here); one field, as most connections never are. */
  #nat: NativeLink | null = null;

  /** `clientIp` is given when the frontend already read it (allow list, logging); otherwise read lazily. */
  constructor(client: Side, frontend: Frontend, clientIp: string | null) {
    this.client = client;
    this.frontend = frontend;
    this.frontendName = frontend.name;
    this.pool = frontend.pool;
    this.portName = frontend.config.port;
    this.#ip = clientIp;
    if (clientIp !== null) this.#port = client.remotePort ?? 0;
    this.#acceptedAt = Date.now();
  }

  get clientIp(): string {
    if (this.#ip === null) {
      this.#ip = plainIp(this.client.remoteAddress);
      this.#port = this.client.remotePort ?? 0;
    }
    return this.#ip;
  }

  /** Client -> server bytes so far (read from the client). */
  get bytesIn(): number {
    const n = this.#nat;
    if (n === null) return this.client.bytesRead;
    return n.id >= 0 ? n.in + n.relay.read(n.id)[RelayStat.ClientRead]! : n.in;
  }

  /** Server -> client bytes so far (written to the client). */
  get bytesOut(): number {
    const n = this.#nat;
    if (n === null) return this.client.bytesWritten;
    return n.id >= 0 ? n.out + n.relay.read(n.id)[RelayStat.ClientWritten]! : n.out;
  }

  /** The bytes are relayed by the native relay (tests, /api/sessions). */
  get native(): boolean {
    return this.#nat !== null && this.#nat.id >= 0;
  }

  /** The native relay's pair id (tests). */
  get nativeId(): number {
    return this.#nat === null ? -1 : this.#nat.id;
  }

  /** Date.now() at accept. */
  get since(): number {
    return this.#acceptedAt;
  }

  get clientPort(): number {
    return this.clientIp === '' ? 0 : this.#port;
  }

  get state(): 'reading' | 'asking' | 'placing' | 'queued' | 'connecting' | 'open' | 'done' {
    return (['reading', 'asking', 'placing', 'queued', 'connecting', 'open', 'done'] as const)[this.#state];
  }

  /** The server-side socket once connected (tests read its buffer state). */
  get upstream(): Side | null {
    return this.#upstream;
  }

  start(): void {
    const c = this.client as ConnSocket;
    c[kConn] = this;
    c.on('error', onClientError);
    c.on('close', onClientClose);
    c.on('end', onClientEnd);
    // Keep-alive and no-delay come from the listening socket (inherited at accept), see Frontend.
    if (this.pool.config.protocol === 'licd') this.licd = (this.license = new LicenseSession(this)).seen;
    const a = this.pool.affinity;
    if (a !== null) {
      if (a.ask !== undefined) {
        this.#state = State.Asking;
        return a.ask(this);
      }
      if (a.readsFirstLine) return this.#readFirstLine();
    }
    if (this.license !== null) return this.#startLicensed(null);
    this.#place();
  }

  // ---- licd protocol: watched start (license-session/) ----

  #startLicensed(head: Buffer | null): void {
    const ls = this.license!;
    const c = this.client;
    if (c instanceof RawSocket) c.setReader(onClientReadLicensed as ReadCallback);
    else (c as Socket).on('data', onClientDataLicensed);
    if (ls.collecting) {
      // No server until a line routes, and no longer than a connect may take (checkConnect).
      this.#state = State.Reading;
      this.#deadline = this.#acceptedAt + this.pool.config.timeouts.connect;
      this.frontend.sweeper.connecting.add(this);
    } else {
      this.#place();
    }
    if (head !== null && head.length > 0) ls.clientData(head);
    if (this.#state !== State.Done && !c.destroyed) c.resume();
  }

  /** SessionHost: the line that routes was read (or the pool answered for a client that needs no routing). */
  sessionPlace(r: SelectResult): void {
    if (this.#state === State.Reading) {
      this.frontend.sweeper.connecting.delete(this);
      this.#state = State.Placing;
    }
    this.#placed(r);
  }

  /** SessionHost: leave the current server without a trace on the client, then connect to `next` or queue. */
  sessionMove(next: Server | null): void {
    const u = this.#upstream;
    this.#upstream = null;
    this.frontend.sweeper.connecting.delete(this);
    this.watch?.close();
    this.watch = null;
    u?.destroy();
    this.server?.detach(this, 0, 0);
    if (this.#clientClosed || this.client.readableEnded) this.#releaseAbandoned(next);
    if (this.#clientClosed) return this.#finish();
    // The client ended its side (FIN) before any useful answer: gone, nothing to replay (see clientEnd).
    if (this.client.readableEnded) return this.#abort('client_close');
    this.#attempts = 0;
    if (next !== null) return this.#connect(next);
    this.#state = State.Queued;
    this.#queuedAt = Date.now();
    this.pool.enqueue(this);
  }

  /** SessionHost: watching is over; from here both directions take the plain forwarding callbacks. */
  sessionPlain(): void {
    this.license = null;
    const c = this.client;
    if (c instanceof RawSocket) {
      c.setReader(onClientRead as ReadCallback);
      // A licd session (heartbeats for days) is the connection that gains most from the native relay.
      this.#eligible();
    }
    else {
      (c as Socket).off('data', onClientDataLicensed);
      (c as Socket).on('data', onClientData);
    }
    const u = this.#upstream;
    // A net.Socket upstream keeps its onread callback, which sees `license` null and forwards (onUpstreamReadLicensed).
    if (u instanceof RawSocket) u.setReader(onUpstreamRead as ReadCallback);
  }

  /** Closable: the pool's master moved away from this server (licd sessions still watching follow it). */
  masterMoved(): void {
    if (this.license !== null && this.#state === State.Open) this.license.masterMoved();
  }

  /** SessionHost: answers (licd syntax) and closes, or closes at once. */
  sessionRefuse(answer: string | null, end: 'bad_request' | 'client_close', error: string | null): void {
    this.frontend.sweeper.connecting.delete(this);
    if (answer === null) {
      this.#error = error;
      return this.#abort(end);
    }
    this.#refuse(answer, end, error);
  }

  /** AskingContext: the cluster primary answered with this connection's binding. */
  affinityAnswered(): void {
    if (this.#state !== State.Asking) return;
    this.#state = State.Placing;
    // A licd pool's session is watched from the first byte, as when no binding had to be asked for.
    if (this.license !== null) return this.#startLicensed(null);
    this.#place();
  }

  // ---- affinity by handle: the first line decides ----

  #readFirstLine(): void {
    this.#state = State.Reading;
    readFirstLine(this.client as Socket, this.pool.config.timeouts.connect, (err, head, line) => this.#firstLine(err, head, line));
    this.client.resume(); // accepted paused (pauseOnConnect); readFirstLine pauses it again once it has the line
  }

  #firstLine(err: FirstLineError | null, head: Buffer, line: string): void {
    if (this.#state !== State.Reading) return;
    if (err === 'CLOSED') return this.#abort('client_close');
    if (err === 'TIMEOUT') {
      this.#error = `no complete first line within ${this.pool.config.timeouts.connect}ms (affinity by handle)`;
      return this.#abort('first_line_timeout');
    }
    if (err === 'LINE_TOO_LONG') {
      return this.#refuse('ERR LINE_TOO_LONG\n', 'bad_request', `first line over ${MAX_FIRST_LINE} bytes`);
    }
    const a = this.pool.affinity;
    const route = a instanceof HandleAffinity ? a.route(line) : null;
    if (route === 'unknown') {
      const name = line.trim().split(/\s+/)[1] ?? '';
      return this.#refuse('ERR UNKNOWN_HANDLE\n', 'unknown_handle', `handle ${name.slice(0, 100)} names no usable server of pool ${this.pool.name}`);
    }
    this.handleServer = route;
    this.#state = State.Placing;
    if (this.license !== null) return this.#startLicensed(head);
    this.#head = head.length > 0 ? head : null;
    this.#place();
  }

  /** Answers licd-style and closes; unread bytes are discarded, and a client that does not close is cut. */
  #refuse(answer: string, end: EndReason, error: string | null): void {
    this.#end = end;
    this.#error = error;
    const c = this.client;
    c.end(answer);
    c.resume();
    setTimeout(destroySocket, this.pool.config.timeouts.connect, c).unref();
  }

  #place(): void {
    this.#placed(this.pool.select(this));
  }

  #placed(r: SelectResult): void {
    if (r instanceof Server) return this.#connect(r);
    // A licd client of a master pool waits (timeouts.queue) while no member is master, instead of failing.
    // So does any client while its pool awaits its first check results (a process just started).
    if (r === 'full' || (r === null && ((this.license !== null && this.pool.mode === 'master') || this.pool.awaitingFirstChecks))) {
      this.#state = State.Queued;
      this.#queuedAt = Date.now();
      this.pool.enqueue(this);
      return;
    }
    this.pool.counters.noServer++;
    this.#abort('no_server');
  }

  // ---- Waiter ----

  dispatch(server: Server): void {
    this.#queueMs += Date.now() - this.#queuedAt;
    this.license?.queueWaited(server);
    this.#connect(server);
  }

  queueTimedOut(): void {
    this.#queueMs += Date.now() - this.#queuedAt;
    this.#abort('queue_timeout');
  }

  queueRefused(): void {
    this.#queueMs += Date.now() - this.#queuedAt;
    this.pool.counters.noServer++;
    this.#abort('no_server');
  }

  // ---- connecting ----

  #connect(server: Server): void {
    this.server = server;
    server.attach(this);
    this.#attempts++;
    this.#state = State.Connecting;
    const now = Date.now();
    if (this.#connectStart === 0) this.#connectStart = now;
    const cfg = this.pool.config;
    this.#deadline = now + cfg.timeouts.connect;
    this.frontend.sweeper.connecting.add(this);
    const port = server.ports[this.portName];
    if (port === undefined) return this.#connectFailed(null, `server has no port "${this.portName}"`);
    const ka = cfg.tcpKeepalive;
    // A long keep-alive is set by the sweeper once the connection has lived KEEPALIVE_DEFER_MS (see checkIdle).
    const keepAlive = ka > 0 && ka < KEEPALIVE_LAZY_MIN_MS;
    const licensed = this.license !== null;
    const read = (licensed ? onUpstreamReadLicensed : onUpstreamRead) as ReadCallback;
    const u = ((rawTcp !== null ? RawSocket.connect(server.host, port, true, keepAlive ? ka : 0, read) : null) ??
      connect({
        host: server.host,
        port,
        allowHalfOpen: true,
        noDelay: true,
        keepAlive,
        keepAliveInitialDelay: ka,
        onread: licensed ? UPSTREAM_ONREAD_LICENSED : UPSTREAM_ONREAD,
      })) as unknown as ConnSocket;
    u[kConn] = this;
    u.on('error', onUpstreamError);
    u.on('close', onUpstreamClose);
    u.on('end', onUpstreamEnd);
    u.on('connect', onUpstreamConnect); // emitted once; `on` spares the once() wrapper
    this.#upstream = u;
  }

  upstreamConnected(u: Side): void {
    if (u !== this.#upstream || this.#state !== State.Connecting) return;
    this.#state = State.Open;
    this.frontend.sweeper.connecting.delete(this);
    // An earlier attempt's connect error is not this connection's outcome (`attempts` tells that it retried).
    this.#error = null;
    this.server!.connected();
    const now = Date.now();
    this.#connectMs = now - this.#connectStart;
    this.#idleMs = this.pool.config.timeouts.idle;
    this.#lastActive = now;
    if (this.pool.config.tcpKeepalive >= KEEPALIVE_LAZY_MIN_MS) this.#keepAliveAt = now + KEEPALIVE_DEFER_MS;
    const c = this.client;
    const sp = this.frontend.config.sendProxy;
    if (sp !== null) {
      const src = { address: this.clientIp, port: this.clientPort };
      const dst = { address: c.localAddress ?? '', port: c.localPort ?? 0 };
      u.write(sp === 'v2' ? encodeProxyV2(src, dst) : encodeProxyV1(src, dst));
    }
    const check = this.pool.config.check;
    const monitor = this.server!.monitor;
    if (check.observe === 'response' && monitor !== null) this.watch = new ResponseWatch(check.timeout, monitor);
    const ls = this.license;
    if (ls !== null) {
      ls.upstreamOpen(u);
      if (c.readableEnded && this.#upstream === u && !u.writableEnded) u.end();
      return;
    }
    const head = this.#head;
    if (head !== null) {
      this.#head = null;
      u.write(head);
      this.watch?.onClientData();
    }
    // Forwarding without pipe(): one 'data' listener per side and 'drain' only under back-pressure, instead of
    // the seven listeners per direction pipe() attaches and removes.
    // The server side reads into the shared buffer from its creation (connect's onread); the client side switches
    // to it here, before it reads anything (accepted paused).
    if (c instanceof RawSocket) {
      c.setReader(onClientRead as ReadCallback);
      this.#eligible();
    } else if (!useSharedReadBuffer(c as Socket, onClientRead as ReadCallback)) (c as Socket).on('data', onClientData);
    if (c.readableEnded) u.end();
    else c.resume();
  }

  #connectFailed(u: Side | null, reason: string): void {
    this.frontend.sweeper.connecting.delete(this);
    this.#upstream = null;
    u?.destroy();
    const s = this.server!;
    s.counters.connectErrors++;
    s.monitor?.reportFailure(`connect: ${reason}`);
    this.#error = reason;
    s.detach(this, 0, 0);
    if (this.#clientClosed || this.#state === State.Done) return this.#finish();
    if (this.license !== null && this.license.connectFailed()) return;
    const cfg = this.pool.config;
    if (this.#attempts > cfg.retries) return this.#abort('connect_failed');
    s.counters.retries++;
    if (cfg.redispatch) {
      (this.exclude ??= []).push(s);
      const next = this.pool.select(this);
      if (next instanceof Server) {
        if (next !== s) s.counters.redispatches++;
        return this.#connect(next);
      }
    }
    // No other server (or no redispatch): try the same one again while it is still usable.
    if (s.takesNewClients(Date.now(), true)) return this.#connect(s);
    this.#abort('connect_failed');
  }

  upstreamError(u: Side, err: NodeJS.ErrnoException): void {
    if (u !== this.#upstream) return;
    if (this.#state === State.Connecting) return this.#connectFailed(u, err.code ?? err.message);
    if (this.license !== null && this.license.lost()) return;
    this.#error ??= `server: ${err.code ?? err.message}`;
    this.#end ??= 'server_close';
    kill(this.client, err.code === 'ECONNRESET');
  }

  checkConnect(now: number): void {
    if (this.#state === State.Reading && this.license !== null && now >= this.#deadline) {
      this.frontend.sweeper.connecting.delete(this);
      this.#error = `no CHECKOUT (or other line that routes) within ${this.pool.config.timeouts.connect}ms`;
      return this.#abort('no_checkout');
    }
    if (this.#state !== State.Connecting || now < this.#deadline) return;
    this.#connectFailed(this.#upstream, `connect timeout after ${this.pool.config.timeouts.connect}ms`);
  }

  checkIdle(now: number): void {
    if (this.#state !== State.Open) return;
    const n = this.#nat;
    if (this.#keepAliveAt !== 0 && now >= this.#keepAliveAt) {
      this.#keepAliveAt = 0;
      if (n !== null) n.relay.keepAlive(n.id, Math.floor(this.pool.config.tcpKeepalive / 1000));
      else this.#upstream?.setKeepAlive(true, this.pool.config.tcpKeepalive);
    }
    let bytes: number;
    if (n !== null) {
      const st = n.relay.read(n.id);
      // The server's FIN, passed on in C: the client now has client_fin to close its side (as in upstreamEnd).
      if ((st[RelayStat.Ended]! & 2) !== 0 && !this.#serverEnded) this.#startClientFin(now);
      bytes = n.in + n.up + st[RelayStat.ClientRead]! + st[RelayStat.ServerRead]!;
    } else {
      // Every byte forwarded was first read on one side, so the two read counters see all activity.
      const u = this.#upstream;
      bytes = this.client.bytesRead + (u !== null ? u.bytesRead : 0);
    }
    if (this.#idleMs === 0) return;
    if (bytes !== this.#lastBytes) {
      this.#lastBytes = bytes;
      this.#lastActive = now;
    } else if (now - this.#lastActive >= this.#idleMs) {
      if (this.#serverEnded) this.#timedOut('client_fin_timeout');
      else this.idleTimeout();
    }
  }

  upstreamEnd(u: Side): void {
    if (u !== this.#upstream) return;
    // A member that stops serving closes its clients: before any useful answer, the client goes to the new master.
    if (this.license !== null && this.license.lost()) return;
    this.#end ??= 'server_close';
    // Half-close: the server's FIN is passed on once what it sent before is written.
    const c = this.client;
    if (!c.destroyed && !c.writableEnded) endOrClose(c);
    // The client now has `client_fin` of silence to close its side; a silent one (hung, stopped) never would,
    // and would count as current until the idle timeout.
    if (this.#state === State.Open && !c.destroyed && !this.#serverEnded) this.#startClientFin(Date.now());
  }

  #startClientFin(now: number): void {
    this.#serverEnded = true;
    this.#idleMs = this.#idleMs === 0 ? this.pool.config.timeouts.clientFin : Math.min(this.#idleMs, this.pool.config.timeouts.clientFin);
    this.#lastActive = now;
  }

  // ---- the native relay (native-relay.ts) ----

  /**
   * Counts down to promotion when the native relay could take this connection (both sides raw sockets, no watcher
   * of the bytes). Only reads promote: a quiet connection (a license held with a heartbeat every few minutes) gains
   * no CPU from C, and handing it over early costs memory until the garbage collector next runs.
   */
  #eligible(): void {
    if (nativeRelay !== null && this.client instanceof RawSocket && this.#upstream instanceof RawSocket && this.watch === null) {
      this.readsBeforeNative = PROMOTE_AFTER_READS;
    }
  }

  /**
   * Hands the open connection to the native relay when nothing is in flight in JavaScript: both sides raw sockets
   * still reading, nothing queued to write, no FIN seen, no watcher of the bytes. Otherwise it stays here.
   */
  promote(): void {
    const relay = nativeRelay;
    const c = this.client;
    const u = this.#upstream;
    if (relay === null || this.#state !== State.Open || this.license !== null || this.watch !== null || this.#nat !== null) return;
    if (!(c instanceof RawSocket) || !(u instanceof RawSocket)) return;
    if (c.destroyed || u.destroyed || c.readableEnded || u.readableEnded || c.writableEnded || u.writableEnded) return;
    // Something in flight (back-pressure, a write whose completion libuv has still to report after its bytes left):
    // try again a few reads later.
    if (c.isPaused() || u.isPaused() || c.writableLength !== 0 || u.writableLength !== 0 || c.writesInFlight !== 0 || u.writesInFlight !== 0) {
      this.readsBeforeNative = PROMOTE_AFTER_READS;
      return;
    }
    void this.clientIp; // read while the descriptor is ours (getpeername)
    let id: number;
    try {
      id = relay.adopt(c.fd, u.fd, this);
    } catch {
      return; // out of descriptors, say: this connection stays on the JavaScript path
    }
    this.#nat = { relay, id, in: c.bytesRead, out: c.bytesWritten, up: u.bytesRead };
    this.readsBeforeNative = 0;
    c.detach();
    u.detach();
  }

  /** RelayOwner: the pair ended by itself (both FINs passed on, or an error); its counters are in relay.stats. */
  nativeEnded(): void {
    const st = this.#nat!.relay.stats;
    this.#nativeFinal(st);
    const side = st[RelayStat.ErrSide]!;
    if (side >= 0) {
      const code = st[RelayStat.ErrCode]!;
      let name: string;
      try {
        name = getSystemErrorName(-code);
      } catch {
        name = `E${code}`;
      }
      this.#error ??= `${side === 0 ? 'client' : 'server'}: ${name}`;
      this.#end ??= side === 0 ? 'client_close' : 'server_close';
    } else {
      this.#end ??= st[RelayStat.FirstEnd] === 2 ? 'server_close' : 'client_close';
    }
    this.#finish();
  }

  #nativeFinal(st: Float64Array): void {
    const n = this.#nat!;
    n.in += st[RelayStat.ClientRead]!;
    n.out += st[RelayStat.ClientWritten]!;
    n.id = NATIVE_DONE;
    this.#upstream = null;
    this.#clientClosed = true;
  }

  /** Ends a promoted connection from here (timeout, admin, server down): finished on the next tick, as a close event. */
  #nativeClose(resetClient: boolean, resetServer: boolean): void {
    const n = this.#nat!;
    this.#nativeFinal(n.relay.close(n.id, resetClient, resetServer));
    process.nextTick(finishConnection, this);
  }

  /** @internal nextTick target of #nativeClose. */
  _finishNow(): void {
    this.#finish();
  }

  upstreamClose(u: Side, hadError: boolean): void {
    if (u !== this.#upstream) return;
    if (this.#state === State.Connecting) return this.#connectFailed(u, 'connection closed while connecting');
    if (this.license !== null && this.license.lost()) return;
    this.#upstream = null;
    this.#end ??= 'server_close';
    if (this.#clientClosed) return this.#finish();
    const c = this.client;
    // A normal close means both directions are done on the server side, so the client side is finishing too.
    if (hadError || !(c.readableEnded && c.writableEnded)) kill(c, false);
  }

  // ---- client side ----

  clientError(err: NodeJS.ErrnoException): void {
    this.#error ??= `client: ${err.code ?? err.message}`;
    this.#end ??= 'client_close';
    if (this.#state === State.Connecting) return this.#dropUpstream();
    const u = this.#upstream;
    // A dead client's seat is reclaimed now, not when its close event comes round.
    if (u !== null) kill(u, err.code === 'ECONNRESET');
  }

  /** Abandons a connect in progress without counting it against the server (the client side ended it). */
  #dropUpstream(): void {
    const u = this.#upstream;
    this.frontend.sweeper.connecting.delete(this);
    this.#upstream = null;
    u?.destroy();
  }

  clientEnd(): void {
    if (this.#state === State.Reading && this.license !== null) return this.#abort('client_close');
    // A licd client that ends its side while its lines wait for a server (queued for a master, connecting after a
    // move) has gone: a client library that gave up on an attempt. Its lines are not replayed later: a RESUME would
    // take the handle from the client's live connection, and the FIN after it would free the seat.
    const ls = this.license;
    if (ls !== null && (this.#state === State.Queued || (this.#state === State.Connecting && ls.moved))) {
      this.#releaseAbandoned(this.#state === State.Connecting ? this.server : null);
      return this.#abort('client_close');
    }
    this.#end ??= 'client_close';
    const u = this.#upstream;
    if (this.#state === State.Open && u !== null && !u.destroyed && !u.writableEnded) endOrClose(u);
  }

  /**
   * The client is gone while its CHECKOUT, sent to a server since lost, has no answer: a master that granted and
   * replicated it before dying left a session that would wait resume_window for a RESUME nobody sends. The kept
   * lines go to the serving master once known, and the close frees the seat (abandoned-checkout.ts). Once per
   * connection; nothing is written to the client.
   */
  #releaseAbandoned(hint: Server | null): void {
    const ls = this.license;
    if (ls === null || !ls.moved || this.#abandonedReleased) return;
    const a = ls.abandonedCheckout();
    if (a === null) return;
    this.#abandonedReleased = true;
    releaseAbandonedCheckout(this.pool, this.portName, a.lines, a.count, hint);
  }

  idleTimeout(): void {
    this.#timedOut('idle_timeout');
  }

  #timedOut(reason: 'idle_timeout' | 'client_fin_timeout'): void {
    if (this.#state !== State.Open) return;
    this.#end = reason;
    if (this.native) return this.#nativeClose(false, false);
    this.client.destroy();
    if (this.#upstream !== null) this.#upstream.destroy();
  }

  clientClose(hadError: boolean): void {
    this.#clientClosed = true;
    this.#end ??= 'client_close';
    if (this.#state === State.Queued) this.pool.cancel(this);
    if (this.#state === State.Queued || this.#state === State.Connecting) this.#releaseAbandoned(this.#state === State.Connecting ? this.server : null);
    const u = this.#upstream;
    if (u === null) return this.#finish();
    if (this.#state === State.Connecting) {
      this.#dropUpstream();
      return this.#finish();
    }
    if (hadError || !(u.readableEnded && u.writableEnded)) kill(u, false);
  }

  // ---- ending ----

  /** Closes both sides now (server down, admin, shutdown). */
  close(reason: EndReason): void {
    if (this.#state === State.Done) return;
    // Closed from here already (#nativeClose), finishing on the next tick: the first reason stands.
    if (this.#nat !== null && !this.native) return;
    this.#end = reason;
    if (this.native) return this.#nativeClose(false, false);
    if (this.#state === State.Queued) this.pool.cancel(this);
    if (this.#state === State.Connecting) this.#dropUpstream();
    this.client.destroy();
    if (this.#upstream !== null) this.#upstream.destroy();
  }

  #abort(reason: EndReason): void {
    this.#end = reason;
    this.client.destroy();
    // The client's close event finishes the connection; if it already closed, finish here.
    if (this.#clientClosed) this.#finish();
  }

  #finish(): void {
    if (this.#state === State.Done) return;
    this.#state = State.Done;
    this.frontend.sweeper.connecting.delete(this);
    this.watch?.close();
    const bytesIn = this.bytesIn;
    const bytesOut = this.bytesOut;
    this.server?.detach(this, bytesIn, bytesOut);
    this.frontend.connectionEnded(this, bytesIn, bytesOut);
    if (this.binding !== null || this.affinityRef !== null) this.pool.release(this);
    const log = this.frontend.log;
    if (!log.isLevelEnabled('info')) return;
    const now = Date.now();
    const s = this.server;
    logConnection(log, this.frontend.logSink, now, {
      client: `${this.clientIp}:${this.clientPort}`,
      pool: this.pool.name,
      server: s === null ? null : s.name,
      tier: s === null ? null : s.tier,
      attempts: this.#attempts,
      queueMs: this.#queueMs,
      connectMs: this.#connectMs,
      totalMs: now - this.#acceptedAt,
      bytesIn,
      bytesOut,
      end: this.#end ?? 'client_close',
      error: this.#error,
    });
  }
}

/**
 * SO_KEEPALIVE with its idle time is four setsockopt calls (SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT).
 * Probes start only after `tcp_keepalive` of silence, so a connection that ends within a few seconds never needs
 * them: the server side of a connection gets its keep-alive from the sweeper once it has lived
 * KEEPALIVE_DEFER_MS (at most one idle tick, 5 s, later), which only moves its first probe that much later. Short
 * keep-alives (under KEEPALIVE_LAZY_MIN_MS) are still set at connect. The client side inherits its options from the
 * listening socket at no cost (Frontend).
 */
const KEEPALIVE_LAZY_MIN_MS = 10_000;
const KEEPALIVE_DEFER_MS = 1_000;

/**
 * Passes a FIN on. When that side already sent its own FIN and has nothing left to write, closing it sends the FIN
 * just as a shutdown would (nothing unread, so no RST), and spares the shutdown call, its two epoll changes and a
 * loop turn: the usual end of a short transaction (the client closes, the server answers with its close).
 */
function endOrClose(s: Side): void {
  if (s.readableEnded && s.writableLength === 0) s.destroy();
  else s.end();
}

/** Destroys a socket; with `reset`, sends RST so the peer learns at once that the other side died abruptly. */
function kill(s: Side, reset: boolean): void {
  if (s.destroyed) return;
  if (reset && !s.connecting) s.resetAndDestroy();
  else s.destroy();
}

function destroySocket(s: Side): void {
  s.destroy();
}

function finishConnection(c: Connection): void {
  c._finishNow();
}

/**
 * Client -> server, from the shared read buffer (see relay.ts). A full server-side buffer pauses the client until
 * the server side drains.
 */
function onClientRead(this: ConnSocket, n: number, buf: Uint8Array): boolean {
  const conn = this[kConn];
  conn.watch?.onClientData();
  const u = conn.upstream;
  if (u === null || u.destroyed) return true;
  if (!relay(u, n, buf) && !this.isPaused()) {
    this.pause();
    u.once('drain', onUpstreamDrain);
  } else if (conn.readsBeforeNative > 0 && --conn.readsBeforeNative === 0) conn.promote();
  return true;
}
/** The same on the stream path, where this Node offers no shared buffer for accepted sockets. */
function onClientData(this: ConnSocket, chunk: Buffer): void {
  const conn = this[kConn];
  conn.watch?.onClientData();
  const u = conn.upstream;
  if (u === null || u.destroyed) return;
  if (!u.write(chunk) && !this.isPaused()) {
    this.pause();
    u.once('drain', onUpstreamDrain);
  }
}
function onUpstreamDrain(this: ConnSocket): void {
  const c = this[kConn].client;
  if (!c.destroyed) c.resume();
}
/** Server -> client, the same the other way. */
function onUpstreamRead(this: ConnSocket, n: number, buf: Uint8Array): boolean {
  const conn = this[kConn];
  conn.watch?.onServerData();
  const c = conn.client;
  if (c.destroyed || this !== conn.upstream) return true;
  if (!relay(c, n, buf) && !this.isPaused()) {
    this.pause();
    c.once('drain', onClientDrain);
  } else if (conn.readsBeforeNative > 0 && --conn.readsBeforeNative === 0) conn.promote();
  return true;
}
const UPSTREAM_ONREAD = onreadOption(onUpstreamRead as ReadCallback);
function onClientDrain(this: ConnSocket): void {
  const u = this[kConn].upstream;
  if (u !== null && !u.destroyed) u.resume();
}
function onClientError(this: ConnSocket, err: NodeJS.ErrnoException): void {
  this[kConn].clientError(err);
}
function onClientClose(this: ConnSocket, hadError: boolean): void {
  this[kConn].clientClose(hadError);
}
function onClientEnd(this: ConnSocket): void {
  this[kConn].clientEnd();
}
function onUpstreamConnect(this: ConnSocket): void {
  this[kConn].upstreamConnected(this);
}
function onUpstreamError(this: ConnSocket, err: NodeJS.ErrnoException): void {
  this[kConn].upstreamError(this, err);
}
function onUpstreamClose(this: ConnSocket, hadError: boolean): void {
  this[kConn].upstreamClose(this, hadError);
}
function onUpstreamEnd(this: ConnSocket): void {
  this[kConn].upstreamEnd(this);
}

// ---- licd pools while the start of the connection is watched (license-session/) ----

function onClientReadLicensed(this: ConnSocket, n: number, buf: Uint8Array): boolean {
  const conn = this[kConn];
  conn.watch?.onClientData();
  conn.license?.clientData(Buffer.from(buf.buffer, buf.byteOffset, n));
  return true;
}
function onClientDataLicensed(this: ConnSocket, chunk: Buffer): void {
  const conn = this[kConn];
  conn.watch?.onClientData();
  conn.license?.clientData(chunk);
}
/** Server -> session; a net.Socket upstream keeps this callback after the switch, so it forwards once plain. */
function onUpstreamReadLicensed(this: ConnSocket, n: number, buf: Uint8Array): boolean {
  const conn = this[kConn];
  const ls = conn.license;
  if (ls === null) return onUpstreamRead.call(this, n, buf);
  if (this === conn.upstream) conn.watch?.onServerData();
  ls.serverData(this, Buffer.from(buf.buffer, buf.byteOffset, n));
  return true;
}
const UPSTREAM_ONREAD_LICENSED = onreadOption(onUpstreamReadLicensed as ReadCallback);
