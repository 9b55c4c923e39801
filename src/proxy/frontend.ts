/**
 * A listener (SPEC 2 `frontends`): accepts clients, applies the `allow` list and the connection limits, and
 * hands each admitted socket to a Connection bound to its pool. Stopping to accept closes only the listening
 * socket; live connections are never touched by the frontend.
 */
import cluster from 'node:cluster';
import { createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { formatHostPort, type HostPort } from '../common/address.ts';
import { AllowList, plainIp } from '../common/allow-list.ts';
import { LpxError } from '../common/errors.ts';
import { lineSink, type Logger } from '../common/logger.ts';
import type { FrontendConfig } from '../config/proxy-config.ts';
import { Connection, type Side } from './connection.ts';
import type { Pool } from './pool.ts';
import { takeInheritedSocket } from './inherited-sockets.ts';
import { interceptAccept, listenerSocketOptionsSettable, setListenerSocketOptions } from './node-internals.ts';
import { RawSocket } from './raw-socket.ts';
import type { TimeoutSweeper } from './timeout-sweeper.ts';

type LineSink = NonNullable<ReturnType<typeof lineSink>>;

/** Process-wide connection count against `global.max_connections`, shared by every frontend. */
export interface GlobalLimits {
  current: number;
  max: number;
}

export interface FrontendDeps {
  log: Logger;
  limits: GlobalLimits;
  /** Every live connection of the process (shutdown walks it). */
  live: Set<Connection>;
  sweeper: TimeoutSweeper;
}

export interface FrontendCounters {
  /** Every accepted TCP connection, denied and over-limit ones included. */
  total: number;
  current: number;
  max: number;
  /** Closed at accept: client address outside `allow`. */
  denied: number;
  /** Closed at accept: global or frontend `max_connections` reached. */
  overLimit: number;
  /** Client -> proxy bytes of ended connections (`snapshot` adds the live ones). */
  bytesIn: number;
  /** Proxy -> client bytes of ended connections (`snapshot` adds the live ones). */
  bytesOut: number;
}

export interface FrontendSnapshot {
  name: string;
  listen: string;
  /** The bound address (differs from `listen` when it asked for port 0). */
  address: string | null;
  accepting: boolean;
  pool: string;
  port: string;
  maxConnections: number;
  sendProxy: 'v1' | 'v2' | null;
  counters: FrontendCounters;
}

export class Frontend {
  readonly name: string;
  readonly log: Logger;
  /** Where the connection log line is written pre-formatted (see lineSink), or null: through `log`. */
  readonly logSink: LineSink | null;
  readonly sweeper: TimeoutSweeper;
  readonly counters: FrontendCounters = { total: 0, current: 0, max: 0, denied: 0, overLimit: 0, bytesIn: 0, bytesOut: 0 };
  config: FrontendConfig;
  pool: Pool;
  #allow: AllowList | null;
  #deps: FrontendDeps;
  #listener: NetServer | null = null;
  /** This frontend's open connections, so /stats shows their bytes while they last (as the server's). */
  readonly #conns = new Set<Connection>();
  readonly #onConnection = (socket: Socket): void => this.#accept(socket);
  readonly #onListenerError = (err: Error): void => this.log.error({ err: err.message }, 'listener error');

  constructor(config: FrontendConfig, pool: Pool, deps: FrontendDeps) {
    this.name = config.name;
    this.config = config;
    this.pool = pool;
    this.#allow = config.allow ? new AllowList(config.allow) : null;
    this.#deps = deps;
    this.sweeper = deps.sweeper;
    this.log = deps.log.child({ frontend: config.name });
    this.logSink = lineSink(this.log);
  }

  /** Opens a listening socket on `listen` that feeds this frontend, without installing it yet. */
  async open(listen: HostPort = this.config.listen): Promise<NetServer> {
    const srv = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: !inheritsSocketOptions() });
    srv.on('connection', this.#onConnection);
    srv.on('error', this.#onListenerError);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        const why =
          err.code === 'EADDRINUSE'
            ? `address in use (another process holds it: stop it, or change listen: of frontend ${this.name})`
            : err.code === 'EACCES'
              ? 'permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)'
              : err.message;
        reject(new LpxError('LPX_ERR_LISTEN', `frontend ${this.name}: cannot listen on ${formatHostPort(listen)}: ${why}`));
      };
      srv.once('error', onError);
      const listening = (): void => {
        srv.off('error', onError);
        resolve();
      };
      // A socket passed by systemd (socket activation) for this address: listened on, not bound (inherited-sockets.ts).
      const inherited = takeInheritedSocket(listen);
      if (inherited !== null) srv.listen(inherited, 4096, listening);
      else srv.listen({ host: listen.host, port: listen.port, backlog: 4096 }, listening);
    });
    this.#tuneListener(srv);
    this.#acceptRaw(srv);
    return srv;
  }

  /**
   * Accepted connections become RawSockets (raw-socket.ts), not net.Sockets: the listening handle's `onconnection`
   * is replaced. net.Server's own still takes accept errors (its 'error' event) and the connections of a pool that
   * reads the first line (affinity by handle), which uses stream events.
   */
  #acceptRaw(srv: NetServer): void {
    interceptAccept(srv, (client) => {
      if (this.pool.affinity?.readsFirstLine === true) return false;
      const s = RawSocket.accepted(client);
      if (!inheritsSocketOptions()) s.setNoDelay(true);
      this.#accept(s);
      return true;
    });
  }

  /**
   * On Linux an accepted socket inherits TCP_NODELAY and SO_KEEPALIVE (with its idle time) from the listening
   * socket, so setting them once here saves three setsockopt calls per client connection. Elsewhere they are set
   * per socket at accept.
   */
  #tuneListener(srv: NetServer): void {
    if (inheritsSocketOptions()) setListenerSocketOptions(srv, true, this.pool.config.tcpKeepalive);
  }

  /** Installs a listener opened by `open`; the previous one stops accepting (its connections are untouched). */
  install(listener: NetServer): void {
    const old = this.#listener;
    this.#listener = listener;
    old?.close();
    const a = this.address();
    this.log.info({ listen: a ? formatHostPort({ host: a.address, port: a.port }) : null, pool: this.pool.name }, 'listening');
  }

  /**
   * Gives the listening socket up without closing it, for another frontend to `adopt` (a renamed frontend that keeps
   * its address): the port never closes, and this frontend's live connections are untouched.
   */
  release(): NetServer | null {
    const l = this.#listener;
    if (!l) return null;
    this.#listener = null;
    l.off('connection', this.#onConnection);
    l.off('error', this.#onListenerError);
    return l;
  }

  /** Takes over a listener another frontend `release`d. */
  adopt(listener: NetServer): void {
    listener.on('connection', this.#onConnection);
    listener.on('error', this.#onListenerError);
    this.#tuneListener(listener);
    this.#acceptRaw(listener);
    this.install(listener);
  }

  /** A reloaded configuration with the same listen address. */
  update(config: FrontendConfig, pool: Pool): void {
    this.config = config;
    this.pool = pool;
    this.#allow = config.allow ? new AllowList(config.allow) : null;
    if (this.#listener) this.#tuneListener(this.#listener);
  }

  stopAccepting(): void {
    const l = this.#listener;
    if (!l) return;
    this.#listener = null;
    l.close();
  }

  get accepting(): boolean {
    return this.#listener !== null;
  }

  address(): AddressInfo | null {
    const a = this.#listener?.address();
    return a && typeof a === 'object' ? a : null;
  }

  #accept(socket: Side): void {
    const c = this.counters;
    c.total++;
    if (!inheritsSocketOptions()) {
      const ka = this.pool.config.tcpKeepalive;
      if (ka > 0) socket.setKeepAlive(true, ka);
    }
    // The peer address costs a syscall: read it here only when something needs it for sure.
    const ip = this.#allow !== null || this.log.isLevelEnabled('info') ? plainIp(socket.remoteAddress) : null;
    if (this.#allow !== null && !this.#allow.allows(ip!)) {
      c.denied++;
      this.#reject(socket, ip, 'denied');
      return;
    }
    const lim = this.#deps.limits;
    const max = this.config.maxConnections;
    if (lim.current >= lim.max || (max > 0 && c.current >= max)) {
      c.overLimit++;
      this.#reject(socket, ip, 'over_limit');
      return;
    }
    c.current++;
    if (c.current > c.max) c.max = c.current;
    lim.current++;
    const conn = new Connection(socket, this, ip);
    this.#deps.live.add(conn);
    this.#conns.add(conn);
    conn.start();
  }

  #reject(socket: Side, ipRead: string | null, end: 'denied' | 'over_limit'): void {
    const ip = ipRead ?? plainIp(socket.remoteAddress);
    const port = socket.remotePort;
    socket.on('error', ignore);
    socket.destroy();
    this.log.info({ client: `${ip}:${port}`, pool: this.pool.name, bytesIn: 0, bytesOut: 0, end }, 'connection closed');
  }

  /** Called once by each connection when both of its sides are closed. */
  connectionEnded(conn: Connection, bytesIn: number, bytesOut: number): void {
    const c = this.counters;
    c.current--;
    c.bytesIn += bytesIn;
    c.bytesOut += bytesOut;
    this.#deps.limits.current--;
    this.#deps.live.delete(conn);
    this.#conns.delete(conn);
  }

  snapshot(): FrontendSnapshot {
    const a = this.address();
    const counters = { ...this.counters };
    // Bytes of live connections too: a license held for days would otherwise show 0 until it ends.
    for (const c of this.#conns) {
      counters.bytesIn += c.bytesIn;
      counters.bytesOut += c.bytesOut;
    }
    return {
      name: this.name,
      listen: formatHostPort(this.config.listen),
      address: a ? formatHostPort({ host: a.address, port: a.port }) : null,
      accepting: this.accepting,
      pool: this.pool.name,
      port: this.config.port,
      maxConnections: this.config.maxConnections,
      sendProxy: this.config.sendProxy,
      counters,
    };
  }
}

function ignore(): void {}

/**
 * Accepted sockets inherit the listening socket's options on Linux, where they can be set on it (node-internals.ts);
 * in a cluster worker the listening socket is the primary's (round robin), so there they are set per accepted socket.
 */
function inheritsSocketOptions(): boolean {
  return process.platform === 'linux' && cluster.isPrimary && listenerSocketOptionsSettable();
}
