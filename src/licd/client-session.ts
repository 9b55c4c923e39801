import type { FeaturePool, HolderInfo, Waiter } from './feature-pool.ts';
import { Grant, type Identity } from './grant.ts';
import { publicHandle } from './handles.ts';
import { printableName } from './printable.ts';
import { ANSWER, REQ_PATTERN, VERSION_PATTERN, compareVersions, onlyKeys, parseCount, parseRequest, type DenyReason, type Request } from './protocol.ts';
import type { SessionRecord } from './peer-messages.ts';
import { SessionBase } from './session-base.ts';

const HELLO_KEYS = ['user', 'host', 'display', 'pid'] as const;
const CHECKOUT_KEYS = ['count', 'version', 'queue', 'req', 'resume'] as const;

/** A CHECKOUT ... queue=1 waiting in a feature's FIFO queue. */
class QueuedCheckout implements Waiter {
  readonly start = Date.now();
  constructor(
    readonly id: string,
    readonly session: ClientSession,
    readonly count: number,
    readonly version: string | null,
    readonly identity: Identity,
    readonly req: string | null,
    readonly resumable: boolean,
  ) {}

  grantQueued(pool: FeaturePool): void {
    this.session.serveQueued(this, pool);
  }

  deny(pool: FeaturePool, reason: DenyReason): void {
    this.session.denyQueued(this, pool, reason);
  }

  describe(): HolderInfo {
    const { user, host, display } = this.identity;
    return { user, host, display, version: this.version ?? '', handle: '', port: 0, start: this.start };
  }
}

/**
 * One license-port connection: HELLO identity, checkouts (each a Grant under its own handle), queued checkouts,
 * heartbeats and status. Everything it holds is freed when the connection ends, however it ends.
 */
export class ClientSession extends SessionBase {
  #identity: Identity | null = null;
  pid: number | null = null;
  readonly #grants = new Map<string, Grant>();
  readonly #queued = new Map<QueuedCheckout, FeaturePool>();

  /** From HELLO; until then an anonymous user on the client's address (CHECKOUT does not require HELLO). */
  get identity(): Identity {
    if (this.#identity) return this.#identity;
    const host = this.address || 'unknown';
    return { user: 'unknown', host, display: host };
  }

  grants(): IterableIterator<Grant> {
    return this.#grants.values();
  }

  get queuedCount(): number {
    return this.#queued.size;
  }

  protected handle(line: string): void {
    // Heartbeats are most of the traffic of a long-lived license session: answer them without parsing.
    if (line === 'HEARTBEAT' || line === 'heartbeat') return this.send(ANSWER.OK);
    const r = parseRequest(line);
    if (!r) return this.send(ANSWER.BAD_COMMAND);
    switch (r.verb) {
      case 'HEARTBEAT':
        return this.send(r.positional.length || r.args || r.malformed ? ANSWER.BAD_ARGUMENT : ANSWER.OK);
      case 'CHECKOUT':
        return this.#checkout(r);
      case 'CHECKIN':
        return this.#checkin(r);
      case 'HELLO':
        return this.#hello(r);
      case 'STATUS':
        return this.#status(r);
      case 'RESUME':
        return this.#resume(r);
      case 'QUIT':
        if (r.positional.length || r.args || r.malformed) return this.send(ANSWER.BAD_ARGUMENT);
        this.send(ANSWER.OK);
        return this.end('quit');
      default:
        return this.send(ANSWER.BAD_COMMAND);
    }
  }

  #hello(r: Request): void {
    const a = r.args;
    if (r.malformed || r.positional.length || !a || !onlyKeys(a, HELLO_KEYS)) return this.send(ANSWER.BAD_ARGUMENT);
    const user = a.get('user');
    const host = a.get('host');
    const pidText = a.get('pid');
    const pid = pidText === undefined ? null : parseCount(pidText, 0);
    if (!user || !host || pid === -1) return this.send(ANSWER.BAD_ARGUMENT);
    // Names end up in status, logs and terminals: control and bidi characters are replaced here, once.
    const h = printableName(host);
    this.#identity = { user: printableName(user), host: h, display: printableName(a.get('display') ?? h) };
    this.pid = pid;
    this.send(`OK server=${this.ctx.name} proto=1\n`);
  }

  #checkout(r: Request): void {
    const a = r.args;
    if (r.malformed || r.positional.length !== 1 || !onlyKeys(a, CHECKOUT_KEYS)) return this.send(ANSWER.BAD_ARGUMENT);
    const count = a?.has('count') ? parseCount(a.get('count')) : 1;
    const version = a?.get('version') ?? null;
    const queue = a?.get('queue') ?? '0';
    const req = a?.get('req') ?? null;
    // `resume=no`: this client never RESUMEs (PROTOCOL.md "CHECKOUT"), so no member keeps the seat after its connection.
    const resume = a?.get('resume') ?? 'yes';
    if (count < 1 || (version !== null && !VERSION_PATTERN.test(version)) || (queue !== '0' && queue !== '1') || (req !== null && !REQ_PATTERN.test(req)) || (resume !== 'yes' && resume !== 'no')) {
      return this.send(ANSWER.BAD_ARGUMENT);
    }
    const refused = this.ctx.gate();
    if (refused) return this.send(refused);
    const pool = this.ctx.pool(r.positional[0]!);
    if (!pool) return this.send(ANSWER.UNKNOWN_FEATURE);
    const f = pool.config;
    if (f.kind === 'tokens') return this.#deny(pool, 'KIND', count);
    if (pool.expired(Date.now())) return this.send(ANSWER.EXPIRED);
    if (version !== null && compareVersions(version, f.version) > 0) return this.#deny(pool, 'VERSION', count);
    if (count > f.count) return this.#deny(pool, 'COUNT', count);
    if (req !== null && this.ctx.replicating && this.#reclaim(req, pool, count)) return;
    const resumable = resume === 'yes';
    if (pool.canGrant(count)) return this.#grant(pool, count, version, this.identity, req, resumable);
    if (queue === '0') return this.#deny(pool, 'EXHAUSTED', count);
    const w = new QueuedCheckout(this.ctx.newQueueId(), this, count, version, this.identity, req, resumable);
    this.#queued.set(w, pool);
    const position = pool.enqueue(w);
    this.send(`QUEUED position=${position}\n`);
    if (this.ctx.replicating) {
      const { user, host, display } = w.identity;
      this.ctx.replicate({ op: 'qadd', r: { q: w.id, f: pool.name, n: count, u: user, host, d: display, s: w.start } });
    }
    this.#log('QUEUED', pool, count, '', this.identity);
  }

  /**
   * A replayed CHECKOUT (PROTOCOL.md "CHECKOUT", `req=`): the session its first try was granted, replicated and then
   * left detached by a dead connection or master is re-attached here and answered like a fresh grant, taking no
   * second seat. False when no detached session matches (the caller grants afresh).
   */
  #reclaim(req: string, pool: FeaturePool, count: number): boolean {
    const grant = this.ctx.reclaim(req, pool, count, this.identity, this, this.ctx.licensePort);
    if (!grant) return false;
    this.#grants.set(grant.handle, grant);
    this.send(`GRANTED handle=${grant.handle} feature=${pool.name} count=${grant.count}\n`);
    this.#log('RESUMED', pool, grant.count, grant.handle, grant.identity, 'checkout replayed');
    return true;
  }

  #grant(pool: FeaturePool, count: number, version: string | null, identity: Identity, req: string | null, resumable: boolean): void {
    const handle = this.ctx.newHandle();
    const grant = new Grant({
      handle,
      pool,
      count,
      version: version ?? pool.config.version,
      identity,
      port: this.ctx.licensePort,
      owner: this,
      req,
      resumable,
    });
    pool.take(grant, count);
    this.#grants.set(handle, grant);
    this.ctx.addGrant(grant);
    const answer = `GRANTED handle=${handle} feature=${pool.name} count=${count}\n`;
    if (!this.ctx.replicating) {
      this.send(answer);
      this.#log('OUT', pool, count, handle, identity);
      return;
    }
    // SPEC 4.3: the client sees GRANTED only once the grant is acknowledged, so a crash right after it loses nothing.
    const slot = this.hold();
    const r: SessionRecord = { h: handle, f: pool.name, n: count, v: grant.version, u: identity.user, host: identity.host, d: identity.display, s: grant.start, tok: {} };
    if (req !== null) r.rq = req;
    if (!resumable) r.nr = 1;
    this.ctx.replicate({ op: 'grant', r }, (ok) => {
      if (ok) {
        this.fill(slot, answer);
        this.#log('OUT', pool, count, handle, identity);
        return;
      }
      if (this.#grants.get(handle) === grant) this.#endGrant(grant, 'not replicated');
      this.fill(slot, this.ctx.gate() ?? 'ERR NO_QUORUM\n');
    });
  }

  #resume(r: Request): void {
    if (r.malformed || r.positional.length !== 1 || r.args) return this.send(ANSWER.BAD_ARGUMENT);
    const refused = this.ctx.gate();
    if (refused) return this.send(refused);
    const handle = r.positional[0]!;
    const own = this.#grants.get(handle);
    const grant = own ?? this.ctx.resume(handle, this, this.ctx.licensePort);
    if (!grant) return this.send(ANSWER.UNKNOWN_HANDLE);
    this.#grants.set(handle, grant);
    this.send(`GRANTED handle=${handle} feature=${grant.pool.name} count=${grant.count}\n`);
    this.#log('RESUMED', grant.pool, grant.count, handle, grant.identity);
  }

  /** Takes one grant away from this connection without freeing it (another connection resumed its handle). */
  detachGrant(handle: string): Grant | undefined {
    const g = this.#grants.get(handle);
    if (g) this.#grants.delete(handle);
    return g;
  }

  /** Takes every grant away without freeing (this daemon stopped serving); queued checkouts are dropped. */
  detachAll(): Grant[] {
    const out = [...this.#grants.values()];
    this.#grants.clear();
    for (const [w, pool] of this.#queued) pool.dequeue(w);
    this.#queued.clear();
    return out;
  }

  #deny(pool: FeaturePool, reason: DenyReason, count: number): void {
    this.send(`DENIED feature=${pool.name} reason=${reason} available=${pool.available}\n`);
    this.#log('DENIED', pool, count, '', this.identity, reason);
  }

  /** Called by the pool: seats freed for a queued checkout, which is already off the queue. */
  serveQueued(w: QueuedCheckout, pool: FeaturePool): void {
    if (!this.#queued.delete(w) || this.closed) return;
    if (this.ctx.replicating) this.ctx.replicate({ op: 'qdel', q: w.id });
    this.#grant(pool, w.count, w.version, w.identity, w.req, w.resumable);
  }

  denyQueued(w: QueuedCheckout, pool: FeaturePool, reason: DenyReason): void {
    if (!this.#queued.delete(w) || this.closed) return;
    if (this.ctx.replicating) this.ctx.replicate({ op: 'qdel', q: w.id });
    this.#deny(pool, reason, w.count);
  }

  #checkin(r: Request): void {
    if (r.malformed || r.positional.length !== 1 || r.args) return this.send(ANSWER.BAD_ARGUMENT);
    const grant = this.#grants.get(r.positional[0]!);
    if (!grant) return this.send(ANSWER.UNKNOWN_HANDLE);
    if (!this.ctx.replicating) {
      // Answer first: freeing serves the queue, and a queued GRANTED for this same connection must follow the OK.
      this.send(ANSWER.OK);
      return this.#endGrant(grant, 'checkin');
    }
    // Releases replicate as surely as grants (PROTOCOL.md "Replication"): the seat is freed now (its `end` precedes
    // any later grant of it in the op stream, and every snapshot from now on lacks it), and OK is answered only once
    // the `end` is acknowledged, so a new master never counts a seat its predecessor said was checked in. The slot
    // keeps a queued GRANTED that the freeing serves behind this answer.
    const slot = this.hold();
    this.#endGrant(grant, 'checkin', (ok) => this.fill(slot, ok ? ANSWER.OK : (this.ctx.gate() ?? 'ERR NO_QUORUM\n')));
  }

  /** Ends a grant here and replicates its `end`; `done` runs once that is acknowledged (or cannot be). */
  #endGrant(grant: Grant, reason: string, done?: (ok: boolean) => void): void {
    this.#grants.delete(grant.handle);
    this.ctx.removeGrant(grant);
    if (!grant.end(reason)) return done?.(true);
    this.#log('IN', grant.pool, grant.count, grant.handle, grant.identity, reason);
    if (this.ctx.replicating) this.ctx.replicate({ op: 'end', h: grant.handle }, done);
    else done?.(true);
  }

  #status(r: Request): void {
    if (r.malformed || r.args || r.positional.length > 1) return this.send(ANSWER.BAD_ARGUMENT);
    if (r.positional.length === 0) return this.send(this.ctx.statusText());
    if (r.positional[0]!.toLowerCase() !== 'json') return this.send(ANSWER.BAD_ARGUMENT);
    this.send(this.ctx.statusJson() + '\n');
  }

  protected release(reason: string): void {
    for (const [w, pool] of this.#queued) {
      pool.dequeue(w);
      if (this.ctx.replicating) this.ctx.replicate({ op: 'qdel', q: w.id });
    }
    this.#queued.clear();
    // The connection was lost rather than ended by the client (no QUIT), e.g. its balancer died: in a set the
    // sessions may wait for a RESUME on another connection (redundancy.hold_on_disconnect).
    const lost = reason === 'closed' || reason === 'error';
    for (const grant of [...this.#grants.values()]) {
      if (lost && this.ctx.holdDisconnected(grant)) {
        this.#grants.delete(grant.handle);
        this.#log('DETACHED', grant.pool, grant.count, grant.handle, grant.identity, reason);
      } else this.#endGrant(grant, reason);
    }
  }

  /** The vendor-daemon debug log: one line per OUT / IN / DENIED / QUEUED. */
  #log(event: string, pool: FeaturePool, count: number, handle: string, id: Identity, reason?: string): void {
    const log = this.ctx.logger;
    if (!log.isLevelEnabled('info')) return;
    // Logs are read by more people than the session's owner: the public id only (the full handle is a capability).
    handle = handle && publicHandle(handle);
    const unit = count === 1 ? 'license' : 'licenses';
    log.info(
      { event, user: id.user, host: id.host, feature: pool.name, count, handle: handle || undefined, address: this.address, reason },
      `${event}: "${pool.name}" ${id.user}@${id.host} ${count} ${unit}${handle ? ` (${handle})` : ''}${reason && event !== 'IN' ? ` reason=${reason}` : reason ? ` (${reason})` : ''}`,
    );
  }
}
