import { createServer, type Server, type Socket } from 'node:net';
import { AllowList } from '../common/allow-list.ts';
import { LpxError, errorMessage } from '../common/errors.ts';
import { silentLogger, type Logger } from '../common/logger.ts';
import type { LicdConfig } from '../config/licd-config.ts';
import { ClientSession } from './client-session.ts';
import type { LicdContext } from './context.ts';
import { FeaturePool, type Holder } from './feature-pool.ts';
import { DetachedSession } from './detached-session.ts';
import { Grant, TokenReservation } from './grant.ts';
import { HandleIssuer } from './handles.ts';
import type { QueueRecord, ReplicatedOp, SessionRecord } from './peer-messages.ts';
import { Redundancy, type ReplicaHost } from './redundancy.ts';
import { LICD_VERSION } from './protocol.ts';
import type { LicdFeatureStatus, LicdSessionStatus, LicdStatus, LicdUserStatus } from './status.ts';
import { renderStatusText } from './status-text.ts';
import { TokenSession } from './token-session.ts';

export interface LicenseServerOptions {
  logger?: Logger;
}

export interface BoundPorts {
  license: number;
  /** 0: the server has no token port (`server.ports.tokens` not written). */
  tokens: number;
  /** The peer (replication) port of a redundant set. */
  peer?: number;
}

export type LicdState = 'stopped' | 'starting' | 'running' | 'stopping';

/** How long `stop()` lets sessions flush their last answers before it cuts them. */
const STOP_FLUSH_MS = 1_000;

/**
 * The reference license daemon (SPEC 4.1, 4.2): a license port and a token port, feature pools with FIFO queues,
 * heartbeat expiry, lmstat-style status. Usable in-process (tests, the demo) and from the `licd` CLI.
 *
 *   const server = new LicenseServer(loadLicdConfig('conf/licd/primary.yaml'), { logger });
 *   const ports = await server.start();   // actual ports; 0 in the file picks free ones
 *   server.reload(loadLicdConfig(file));  // counts and features change in place; no connection is cut
 *   await server.stop();
 */
export class LicenseServer implements LicdContext, ReplicaHost {
  #config: LicdConfig;
  readonly logger: Logger;
  readonly #handles: HandleIssuer;
  readonly #pools = new Map<string, FeaturePool>();
  #order: FeaturePool[] = [];
  #tokenPool: FeaturePool | undefined;
  #allow: AllowList | null;
  readonly #grants = new Map<string, Grant>();
  readonly #clients = new Set<ClientSession>();
  readonly #tokenSessions = new Set<TokenSession>();
  readonly #sockets = new Set<Socket>();
  #listeners: Server[] = [];
  #ports: BoundPorts = { license: 0, tokens: 0 };
  #sweep: NodeJS.Timeout | null = null;
  #state: LicdState = 'stopped';
  /** Null for a standalone daemon. */
  readonly #redundancy: Redundancy | null;
  /** Replicated sessions without a connection here (SPEC 4.3): a follower's copy, or a failed master's leftovers. */
  readonly #detached = new Map<string, DetachedSession>();
  /** A follower's copy of the master's queue (status only). */
  #replicaQueue = new Map<string, QueueRecord>();
  #queueIds = 0;

  constructor(config: LicdConfig, opts: LicenseServerOptions = {}) {
    this.#config = config;
    this.logger = (opts.logger ?? silentLogger).child({ licd: config.server.name });
    this.#handles = new HandleIssuer(config.server.name);
    this.#allow = config.server.allow ? new AllowList(config.server.allow) : null;
    this.#applyFeatures(config);
    this.#redundancy = config.redundancy ? new Redundancy(config.redundancy, this, this.logger) : null;
  }

  get name(): string {
    return this.#config.server.name;
  }

  get config(): LicdConfig {
    return this.#config;
  }

  get state(): LicdState {
    return this.#state;
  }

  /** Bound ports (0 before start). */
  get ports(): BoundPorts {
    return this.#ports;
  }

  get licensePort(): number {
    return this.#ports.license;
  }

  get tokensPort(): number {
    return this.#ports.tokens;
  }

  get allow(): AllowList | null {
    return this.#allow;
  }

  get proxyProtocol(): boolean {
    return this.#config.server.proxyProtocol;
  }

  /** Opens both ports; resolves the actual ports. Fails with LPX_ERR_LISTEN naming the address. */
  async start(): Promise<BoundPorts> {
    if (this.#state !== 'stopped') throw new LpxError('LPX_ERR_USAGE', `licd ${this.name} is already ${this.#state}`);
    this.#state = 'starting';
    const { host, ports } = this.#config.server;
    const red = this.#redundancy;
    if (red && ports.peer === null) {
      this.#state = 'stopped';
      throw new LpxError('LPX_ERR_CONFIG', `${this.#config.file}: server.ports.peer is required with redundancy (the port members replicate on)`);
    }
    try {
      const license = await this.#listen(host, ports.license, (s) => this.#accept(s, ClientSession, this.#clients));
      const tokens = ports.tokens === null ? 0 : await this.#listen(host, ports.tokens, (s) => this.#accept(s, TokenSession, this.#tokenSessions));
      this.#ports = { license, tokens };
      if (red) {
        const r = this.#config.redundancy!;
        this.#ports.peer = await red.start(host, ports.peer!, { name: this.name, order: r.order, mode: r.mode, license, tokens });
      }
    } catch (err) {
      await this.#closeListeners();
      await red?.stop();
      this.#state = 'stopped';
      throw err;
    }
    this.#startSweep();
    this.#state = 'running';
    this.logger.info(
      { event: 'listening', host, ports: this.#ports },
      `licd ${this.name} listening on ${host}: license ${this.#ports.license}${this.#ports.tokens ? `, tokens ${this.#ports.tokens}` : ', no token port'}${this.#ports.peer ? `, peer ${this.#ports.peer}` : ''}`,
    );
    return this.#ports;
  }

  #listen(host: string, port: number, onSocket: (s: Socket) => void): Promise<number> {
    const server = createServer({ noDelay: true }, onSocket);
    this.#listeners.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const why = err.code === 'EADDRINUSE' ? 'address in use' : err.code === 'EACCES' ? 'permission denied' : errorMessage(err);
        reject(new LpxError('LPX_ERR_LISTEN', `licd ${this.name}: cannot listen on ${host}:${port}: ${why}`));
      });
      server.listen({ host, port }, () => {
        server.on('error', (err) => this.logger.error({ err: errorMessage(err) }, 'listener error'));
        resolve((server.address() as { port: number }).port);
      });
    });
  }

  #accept<S extends ClientSession | TokenSession>(
    socket: Socket,
    Kind: new (ctx: LicdContext, socket: Socket) => S,
    set: Set<S>,
  ): void {
    if (this.#state !== 'running') {
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    const session = new Kind(this, socket);
    set.add(session);
    session.start();
  }

  /** Stops accepting, ends every session (freeing its licenses), resolves when every connection is gone. */
  async stop(): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'stopping') return;
    this.#state = 'stopping';
    if (this.#sweep) clearInterval(this.#sweep);
    this.#sweep = null;
    const closing = this.#closeListeners();
    const peers = this.#redundancy?.stop();
    for (const s of [...this.#clients]) s.end('shutdown');
    for (const s of [...this.#tokenSessions]) s.end('shutdown');
    // A client that does not read keeps its socket open with answers pending: cut it after a short grace.
    const cut = setTimeout(() => {
      for (const s of this.#sockets) s.destroy();
    }, STOP_FLUSH_MS);
    await closing;
    await peers;
    clearTimeout(cut);
    this.#state = 'stopped';
    this.logger.info({ event: 'stopped' }, `licd ${this.name} stopped`);
  }

  async #closeListeners(): Promise<void> {
    const listeners = this.#listeners;
    this.#listeners = [];
    await Promise.all(listeners.map((l) => new Promise<void>((r) => (l.listening ? l.close(() => r()) : r()))));
  }

  /**
   * Applies a re-read license file in place. Counts, versions, expiry, new and removed features, allow list,
   * proxy_protocol and heartbeat_timeout take effect; seats held above a lowered count are kept and new grants
   * wait until usage falls below it. Name, host and ports need a restart (a warning says so).
   */
  reload(config: LicdConfig): void {
    const old = this.#config.server;
    const next = config.server;
    if (next.name !== old.name || next.host !== old.host || next.ports.license !== old.ports.license || next.ports.tokens !== old.ports.tokens || next.ports.peer !== old.ports.peer) {
      this.logger.warn({ event: 'reload' }, 'server name, host and ports changes take effect only after a restart');
    }
    if (JSON.stringify(config.redundancy) !== JSON.stringify(this.#config.redundancy)) {
      this.logger.warn({ event: 'reload' }, 'redundancy changes take effect only after a restart');
    }
    this.#config = {
      ...config,
      server: { ...next, name: old.name, host: old.host, ports: old.ports },
      redundancy: this.#config.redundancy,
    };
    this.#allow = next.allow ? new AllowList(next.allow) : null;
    this.#applyFeatures(config);
    if (next.heartbeatTimeout !== old.heartbeatTimeout && this.#sweep) this.#startSweep();
    this.logger.info(
      { event: 'reload', features: this.#order.map((p) => `${p.name}:${p.count}`) },
      `licd ${this.name} reloaded: ${this.#order.map((p) => `${p.name} ${p.count}`).join(', ')}`,
    );
  }

  #applyFeatures(config: LicdConfig): void {
    const wanted = new Set<string>();
    const order: FeaturePool[] = [];
    for (const f of config.features) {
      wanted.add(f.name);
      let pool = this.#pools.get(f.name);
      if (pool) pool.update(f);
      else this.#pools.set(f.name, (pool = new FeaturePool(f)));
      order.push(pool);
    }
    // Removed features stay known to the grants that hold them, so a later reload that brings them back counts right.
    for (const [name, pool] of this.#pools) if (!wanted.has(name) && !pool.retired) pool.retire();
    this.#order = order;
    this.#tokenPool = order.find((p) => p.config.kind === 'tokens');
  }

  /** Ends sessions idle for longer than heartbeat_timeout; a token connection bound to a grant follows its session. */
  #startSweep(): void {
    if (this.#sweep) clearInterval(this.#sweep);
    const hb = this.#config.server.heartbeatTimeout;
    this.#sweep = setInterval(() => this.#expireIdle(), Math.min(1_000, Math.max(10, Math.floor(hb / 4))));
    this.#sweep.unref();
  }

  #expireIdle(): void {
    const limit = Date.now() - this.#config.server.heartbeatTimeout;
    for (const s of this.#clients) {
      if (s.lastActivity < limit) {
        this.logger.info({ event: 'timeout', user: s.identity.user, host: s.identity.host, address: s.address }, `TIMEOUT: ${s.identity.user}@${s.identity.host} heartbeat timeout, session ended`);
        s.close('heartbeat timeout');
      }
    }
    for (const s of this.#tokenSessions) if (!s.bound && s.lastActivity < limit) s.close('heartbeat timeout');
    if (this.#redundancy?.effective) {
      const now = Date.now();
      for (const d of [...this.#detached.values()]) {
        if (d.expiresAt !== null && d.expiresAt <= now) {
          this.#detached.delete(d.handle);
          d.end();
          this.#redundancy.replicate({ op: 'end', h: d.handle });
          this.logger.info({ event: 'timeout', handle: d.handle, user: d.identity.user, host: d.identity.host }, `TIMEOUT: ${d.handle} not resumed within heartbeat_timeout, freed`);
        }
      }
    }
  }

  // ---- LicdContext (what sessions see) ----

  pool(feature: string): FeaturePool | undefined {
    const p = this.#pools.get(feature);
    return p && !p.retired ? p : undefined;
  }

  defaultTokenPool(): FeaturePool | undefined {
    return this.#tokenPool;
  }

  newHandle(): string {
    return this.#handles.next();
  }

  grant(handle: string): Grant | undefined {
    return this.#grants.get(handle);
  }

  addGrant(grant: Grant): void {
    this.#grants.set(grant.handle, grant);
  }

  removeGrant(grant: Grant): void {
    if (this.#grants.get(grant.handle) === grant) this.#grants.delete(grant.handle);
  }

  get replicating(): boolean {
    return this.#redundancy !== null;
  }

  gate(): string | null {
    return this.#redundancy ? this.#redundancy.gate() : null;
  }

  replicate(op: ReplicatedOp, done?: (ok: boolean) => void): void {
    if (this.#redundancy) this.#redundancy.replicate(op, done);
    else done?.(true);
  }

  newQueueId(): string {
    return `${this.name}.q${(++this.#queueIds).toString(16)}`;
  }

  resume(handle: string, owner: { touch(): void }, port: number): Grant | undefined {
    let d = this.#detached.get(handle);
    if (!d) {
      // The handle is still held by another connection here (the client's old one, not yet seen closing): take it over.
      const live = this.#grants.get(handle);
      if (!live || live.ended || !this.#redundancy) return undefined;
      (live.owner as ClientSession).detachGrant(handle);
      d = this.#detachGrant(live);
    }
    this.#detached.delete(handle);
    const g = new Grant({ handle, pool: d.seatPool, count: d.count, version: d.version, identity: d.identity, port, owner, start: d.start });
    d.seatPool.transfer(d, g);
    for (const p of d.tokenPools) {
      if (p.heldBy(d) === 0) continue;
      g.reservation ??= new TokenReservation(g);
      p.transfer(d, g.reservation);
      g.reservation.pools.push(p);
    }
    d.adopt();
    this.#grants.set(handle, g);
    return g;
  }

  /** Moves a live grant's seats and tokens to a detached session (nothing is freed, no queue is served). */
  #detachGrant(g: Grant): DetachedSession {
    const d = new DetachedSession({ handle: g.handle, seatPool: g.pool, count: g.count, version: g.version, identity: g.identity, start: g.start, port: g.port });
    g.pool.transfer(g, d);
    const move = (pool: FeaturePool, from: Holder) => {
      if (pool.transfer(from, d) > 0 && !d.tokenPools.includes(pool)) d.tokenPools.push(pool);
    };
    for (const t of g.tokenHolders()) if (t instanceof TokenSession) for (const p of t.pools) move(p, t);
    const res = g.reservation;
    if (res) for (const p of res.pools) move(p, res);
    this.removeGrant(g);
    g.abandon('session detached');
    const old = this.#detached.get(g.handle);
    if (old) old.end();
    this.#detached.set(g.handle, d);
    return d;
  }

  // ---- ReplicaHost (what the redundancy layer sees) ----

  replicaSnapshot(): { sessions: SessionRecord[]; queue: QueueRecord[] } {
    const tok = new Map<string, Record<string, number>>();
    const pools = [...this.#pools.values()];
    for (const pool of pools) {
      if (pool.config.kind !== 'tokens') continue;
      for (const [holder, n] of pool.holders()) {
        const h = holder.describe().handle;
        if (!h) continue;
        const rec = tok.get(h) ?? {};
        rec[pool.name] = (rec[pool.name] ?? 0) + n;
        tok.set(h, rec);
      }
    }
    const sessions: SessionRecord[] = [];
    const queue: QueueRecord[] = [];
    for (const pool of pools) {
      if (pool.config.kind === 'tokens') continue;
      for (const [holder, n] of pool.holders()) {
        const i = holder.describe();
        sessions.push({ h: i.handle, f: pool.name, n, v: i.version || pool.config.version, u: i.user, host: i.host, d: i.display, s: i.start, tok: tok.get(i.handle) ?? {} });
      }
      for (const w of pool.waiters()) {
        const i = w.describe();
        if (w.id) queue.push({ q: w.id, f: pool.name, n: w.count, u: i.user, host: i.host, d: i.display, s: i.start });
      }
    }
    for (const q of this.#replicaQueue.values()) queue.push(q);
    return { sessions, queue };
  }

  replicaLoad(sessions: SessionRecord[], queue: QueueRecord[]): void {
    if (this.#grants.size > 0) this.#detachLive();
    for (const d of this.#detached.values()) d.end();
    this.#detached.clear();
    for (const r of sessions) this.#addDetached(r);
    this.#replicaQueue = new Map(queue.map((q) => [q.q, q]));
  }

  replicaApply(op: ReplicatedOp): void {
    switch (op.op) {
      case 'grant':
        return this.#addDetached(op.r);
      case 'end': {
        const d = this.#detached.get(op.h);
        if (d) {
          this.#detached.delete(op.h);
          d.end();
        }
        return;
      }
      case 'tok': {
        const d = this.#detached.get(op.h);
        const pool = this.#pools.get(op.f);
        if (d && pool) d.tokens(pool, op.n < 0 ? -Math.min(-op.n, pool.heldBy(d)) : op.n);
        return;
      }
      case 'qadd':
        this.#replicaQueue.set(op.r.q, op.r);
        return;
      case 'qdel':
        this.#replicaQueue.delete(op.q);
        return;
    }
  }

  startServing(): void {
    const at = Date.now() + this.#config.server.heartbeatTimeout;
    for (const d of this.#detached.values()) d.expiresAt = at;
    this.#replicaQueue.clear();
  }

  stopServing(reason: string): void {
    this.#detachLive();
    for (const d of this.#detached.values()) d.expiresAt = null;
    this.#replicaQueue.clear();
    // Clients reconnect (through the balancer) to the member that serves now, and RESUME there.
    for (const s of [...this.#clients]) s.close(`stopped serving: ${reason}`);
    for (const s of [...this.#tokenSessions]) s.close(`stopped serving: ${reason}`);
  }

  #detachLive(): void {
    for (const s of this.#clients) for (const g of s.detachAll()) this.#detachGrant(g);
    for (const g of [...this.#grants.values()]) this.#detachGrant(g);
  }

  #addDetached(r: SessionRecord): void {
    const pool = this.#pools.get(r.f);
    if (!pool) {
      this.logger.warn({ event: 'replica-unknown-feature', feature: r.f, handle: r.h }, `replicated session ${r.h} of unknown feature ${r.f} ignored (license files differ)`);
      return;
    }
    if (this.#grants.has(r.h)) return;
    this.#detached.get(r.h)?.end();
    const d = new DetachedSession({
      handle: r.h,
      seatPool: pool,
      count: r.n,
      version: r.v,
      identity: { user: r.u, host: r.host, display: r.d },
      start: r.s,
      port: this.#ports.license,
    });
    pool.take(d, r.n);
    for (const [f, n] of Object.entries(r.tok)) {
      const tp = this.#pools.get(f);
      if (tp) d.tokens(tp, n);
    }
    this.#detached.set(r.h, d);
  }

  forget(session: object): void {
    if (!this.#clients.delete(session as ClientSession)) this.#tokenSessions.delete(session as TokenSession);
  }

  statusText(): string {
    return renderStatusText(this.status());
  }

  statusJson(): string {
    return JSON.stringify(this.status());
  }

  /** A fresh snapshot: features with usage and user lines, sessions. Off the hot path; build it only when asked. */
  status(): LicdStatus {
    const now = Date.now();
    const features: LicdFeatureStatus[] = this.#order.map((pool) => {
      const f = pool.config;
      const users: LicdUserStatus[] = [];
      for (const [holder, count] of pool.holders()) {
        const info = holder.describe();
        users.push({ ...info, version: info.version || f.version, count, queued: false });
      }
      for (const w of pool.waiters()) {
        const info = w.describe();
        users.push({ ...info, version: info.version || f.version, count: w.count, queued: true });
      }
      return {
        name: f.name,
        version: f.version,
        kind: f.kind,
        issued: f.count,
        inUse: pool.inUse,
        queued: pool.queueLength,
        expires: f.expires,
        expired: pool.expired(now),
        users,
      };
    });
    const sessions: LicdSessionStatus[] = [];
    for (const s of this.#clients) {
      const handles: string[] = [];
      for (const g of s.grants()) handles.push(g.handle);
      sessions.push({
        user: s.identity.user,
        host: s.identity.host,
        display: s.identity.display,
        pid: s.pid,
        address: s.address,
        port: s.clientPort,
        since: s.since,
        lastActivity: s.lastActivity,
        handles,
        queued: s.queuedCount,
      });
    }
    const red = this.#redundancy;
    const running = this.#state === 'running';
    if (red && !red.effective) {
      for (const q of this.#replicaQueue.values()) {
        const f = features.find((x) => x.name === q.f);
        if (!f) continue;
        f.queued++;
        f.users.push({ user: q.u, host: q.host, display: q.d, version: f.version, handle: '', port: 0, start: q.s, count: q.n, queued: true });
      }
    }
    return {
      server: this.name,
      version: LICD_VERSION,
      up: running && (red ? red.up : true),
      master: running && (red ? red.effective : true),
      ...(red ? { redundancy: red.status() } : {}),
      host: this.#config.server.host,
      ports: { ...this.#ports },
      features,
      sessions,
      connections: { license: this.#clients.size, tokens: this.#tokenSessions.size },
    };
  }
}
