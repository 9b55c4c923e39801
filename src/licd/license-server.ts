import { createServer, type Server, type Socket } from 'node:net';
import { AllowList } from '../common/allow-list.ts';
import { LpxError, errorMessage } from '../common/errors.ts';
import { silentLogger, type Logger } from '../common/logger.ts';
import type { LicdConfig } from '../config/licd-config.ts';
import { ClientSession } from './client-session.ts';
import type { LicdContext } from './context.ts';
import { FeaturePool } from './feature-pool.ts';
import { DetachedSession } from './detached-session.ts';
import type { Grant, Identity } from './grant.ts';
import { HandleIssuer, HandleMap, publicHandle } from './handles.ts';
import type { QueueRecord, ReplicatedOp, SessionRecord } from './peer-messages.ts';
import { Redundancy, type ReplicaHost } from './redundancy.ts';
import { ReplicaState } from './replica-state.ts';
import { printableName } from './printable.ts';
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
  /** Live grants by handle; found only by the full handle (a capability, PROTOCOL.md "Handles"). */
  readonly #grants = new HandleMap<Grant>();
  readonly #clients = new Set<ClientSession>();
  readonly #tokenSessions = new Set<TokenSession>();
  readonly #sockets = new Set<Socket>();
  #listeners: Server[] = [];
  #ports: BoundPorts = { license: 0, tokens: 0 };
  #sweep: NodeJS.Timeout | null = null;
  #state: LicdState = 'stopped';
  /** Null for a standalone daemon. */
  readonly #redundancy: Redundancy | null;
  /** Replicated sessions without a connection here and the follower's copy of the queue (SPEC 4.3); null standalone. */
  readonly #replica: ReplicaState | null;
  #queueIds = 0;

  constructor(config: LicdConfig, opts: LicenseServerOptions = {}) {
    this.#config = config;
    this.logger = (opts.logger ?? silentLogger).child({ licd: config.server.name });
    this.#handles = new HandleIssuer(config.server.name);
    this.#allow = config.server.allow ? new AllowList(config.server.allow) : null;
    this.#applyFeatures(config);
    this.#redundancy = config.redundancy ? new Redundancy(config.redundancy, this, this.logger) : null;
    const pools = this.#pools;
    const server = this;
    this.#replica = config.redundancy
      ? new ReplicaState({
          logger: this.logger,
          get licensePort() {
            return server.licensePort; // bound at start, after this is built
          },
          knownPool: (name) => pools.get(name),
          allPools: () => pools.values(),
          grants: this.#grants,
          liveSessions: () => this.#clients.values(),
        })
      : null;
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

  /**
   * Ends sessions idle for longer than heartbeat_timeout (a token connection bound to a grant follows its session)
   * and, on a serving member of a set, frees replicated sessions not resumed by their deadline (resume_window).
   */
  #startSweep(): void {
    if (this.#sweep) clearInterval(this.#sweep);
    const hb = Math.min(this.#config.server.heartbeatTimeout, this.#config.redundancy?.resumeWindow ?? Infinity);
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
    if (this.#replica && this.#redundancy?.effective) {
      for (const d of this.#replica.expire(Date.now())) {
        this.#redundancy.replicate({ op: 'end', h: d.handle });
        const id = publicHandle(d.handle);
        this.logger.info({ event: 'timeout', handle: id, user: d.identity.user, host: d.identity.host }, `TIMEOUT: ${id} not resumed within resume_window, freed`);
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
    this.#grants.set(grant);
  }

  removeGrant(grant: Grant): void {
    if (this.#grants.holds(grant)) this.#grants.delete(grant.handle);
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
    const g = this.#replica?.resume(handle, owner, port);
    // Its resume deadline is gone on the followers too (streamed: see RESUME_GRACE_MS for a lost one).
    if (g) this.replicate({ op: 'res', h: g.handle });
    return g;
  }

  holdDisconnected(grant: Grant): boolean {
    const hold = this.#config.redundancy?.holdOnDisconnect ?? 0;
    if (hold <= 0 || !this.#replica || !this.#redundancy?.effective) return false;
    // A `resume=no` grant is never held: nobody would come back for it.
    return this.#replica.holdDisconnected(grant, Date.now() + hold);
  }

  reclaim(req: string, pool: FeaturePool, count: number, identity: Identity, owner: { touch(): void }, port: number): Grant | undefined {
    const g = this.#replica?.reclaim(req, pool, count, identity, owner, port);
    if (g) this.replicate({ op: 'res', h: g.handle });
    return g;
  }

  // ---- ReplicaHost (what the redundancy layer sees) ----

  replicaSnapshot(): { sessions: SessionRecord[]; queue: QueueRecord[] } {
    return this.#replica!.snapshot();
  }

  replicaLoad(sessions: SessionRecord[], queue: QueueRecord[]): void {
    this.#replica!.load(sessions, queue);
  }

  replicaApply(op: ReplicatedOp): void {
    this.#replica!.apply(op);
  }

  startServing(): void {
    this.#replica!.startServing(this.#config.redundancy!.resumeWindow);
    // Before any follower's snapshot, so none of them copies the freed seats; the `end`s keep the op stream exact.
    for (const d of this.#replica!.dropUnresumable()) {
      this.#redundancy!.replicate({ op: 'end', h: d.handle });
      this.#logUnresumable(d, 'its connection was to the previous master');
    }
  }

  stopServing(reason: string): void {
    for (const d of this.#replica!.stopServing()) this.#logUnresumable(d, 'this member stopped serving');
    // Clients reconnect (through the balancer) to the member that serves now, and RESUME there.
    for (const s of [...this.#clients]) s.close(`stopped serving: ${reason}`);
    for (const s of [...this.#tokenSessions]) s.close(`stopped serving: ${reason}`);
  }

  lostMaster(): void {
    for (const d of this.#replica!.dropUnresumable()) this.#logUnresumable(d, 'the master link was lost');
  }

  /** One IN line per `resume=no` session freed by a master change (PROTOCOL.md "CHECKOUT"). */
  #logUnresumable(d: DetachedSession, why: string): void {
    const id = publicHandle(d.handle);
    this.logger.info(
      { event: 'IN', handle: id, user: d.identity.user, host: d.identity.host, feature: d.seatPool.name, count: d.count, reason: 'resume=no' },
      `IN: "${d.seatPool.name}" ${d.identity.user}@${d.identity.host} ${d.count} ${d.count === 1 ? 'license' : 'licenses'} (${id}) (resume=no: ${why})`,
    );
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
        const user: LicdUserStatus = { ...printableInfo(info), handle: publicHandle(info.handle), version: info.version || f.version, count, queued: false };
        if (holder instanceof DetachedSession && holder.expiresAt !== null) user.resumeBy = holder.expiresAt;
        users.push(user);
      }
      for (const w of pool.waiters()) {
        const info = w.describe();
        users.push({ ...printableInfo(info), version: info.version || f.version, count: w.count, queued: true });
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
      for (const g of s.grants()) handles.push(publicHandle(g.handle));
      sessions.push({
        user: printableName(s.identity.user),
        host: printableName(s.identity.host),
        display: printableName(s.identity.display),
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
      for (const q of this.#replica!.queueRecords()) {
        const f = features.find((x) => x.name === q.f);
        if (!f) continue;
        f.queued++;
        f.users.push({ user: printableName(q.u), host: printableName(q.host), display: printableName(q.d), version: f.version, handle: '', port: 0, start: q.s, count: q.n, queued: true });
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

/** A holder's names as status may print them (PROTOCOL.md "Status"). */
function printableInfo<T extends { user: string; host: string; display: string }>(info: T): T {
  return { ...info, user: printableName(info.user), host: printableName(info.host), display: printableName(info.display) };
}
