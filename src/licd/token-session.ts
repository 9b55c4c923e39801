import type { FeaturePool, Holder, HolderInfo } from './feature-pool.ts';
import type { Grant, TokenHolder } from './grant.ts';
import { publicHandle } from './handles.ts';
import { ANSWER, onlyKeys, parseCount, parseRequest, type DenyReason, type Request } from './protocol.ts';
import { SessionBase } from './session-base.ts';

const TOKEN_KEYS = ['feature'] as const;

/**
 * One token-port connection (LSTC's parallel-token port): draws tokens under a handle issued on the license
 * port of this same daemon. It is tied to that license session: traffic here keeps the session alive, and the
 * session ending (checkin, close, heartbeat timeout) frees the tokens and closes this connection.
 */
export class TokenSession extends SessionBase implements Holder, TokenHolder {
  #grant: Grant | null = null;
  /** Pools this connection drew from (usually one). */
  readonly #pools: FeaturePool[] = [];

  /** Bound to a live grant: the license session's heartbeat governs this connection. */
  get bound(): boolean {
    return this.#grant !== null;
  }

  get grant(): Grant | null {
    return this.#grant;
  }

  /** Pools this connection holds tokens of (for moving them when its grant is detached). */
  get pools(): readonly FeaturePool[] {
    return this.#pools;
  }

  override touch(): void {
    super.touch();
    this.#grant?.owner.touch();
  }

  protected handle(line: string): void {
    const r = parseRequest(line);
    if (!r) return this.send(ANSWER.BAD_COMMAND);
    switch (r.verb) {
      case 'TOKENS':
        return this.#tokens(r);
      case 'RELEASE':
        return this.#release(r);
      case 'HEARTBEAT':
        return this.send(r.positional.length || r.args || r.malformed ? ANSWER.BAD_ARGUMENT : ANSWER.OK);
      case 'QUIT':
        if (r.positional.length || r.args || r.malformed) return this.send(ANSWER.BAD_ARGUMENT);
        this.send(ANSWER.OK);
        return this.end('quit');
      default:
        return this.send(ANSWER.BAD_COMMAND);
    }
  }

  /** `feature=` names the pool; without it, the first `kind: tokens` feature of the license file. */
  #pool(r: Request): FeaturePool | undefined {
    const name = r.args?.get('feature');
    return name === undefined ? this.ctx.defaultTokenPool() : this.ctx.pool(name);
  }

  #tokens(r: Request): void {
    if (r.malformed || r.positional.length !== 2 || !onlyKeys(r.args, TOKEN_KEYS)) return this.send(ANSWER.BAD_ARGUMENT);
    const n = parseCount(r.positional[1]);
    if (n < 1) return this.send(ANSWER.BAD_ARGUMENT);
    const refused = this.ctx.gate();
    if (refused) return this.send(refused);
    const grant = this.ctx.grant(r.positional[0]!);
    if (!grant || grant.ended) return this.send(ANSWER.UNKNOWN_HANDLE);
    // One connection draws for one session; a second handle here would tie it to two lifetimes.
    if (this.#grant && this.#grant !== grant) return this.send(ANSWER.BAD_ARGUMENT);
    const pool = this.#pool(r);
    if (!pool) return this.send(ANSWER.UNKNOWN_FEATURE);
    if (pool.config.kind !== 'tokens') return this.#deny(pool, 'KIND', n, grant);
    if (pool.expired(Date.now())) return this.send(ANSWER.EXPIRED);
    if (n > pool.count) return this.#deny(pool, 'COUNT', n, grant);
    // Tokens this handle held before a failover are reclaimed first and counted once (PROTOCOL.md "RESUME").
    const reservation = grant.reservation;
    const reuse = reservation ? Math.min(n, pool.heldBy(reservation)) : 0;
    const fresh = n - reuse;
    if (fresh > 0 && !pool.canGrant(fresh)) return this.#deny(pool, 'EXHAUSTED', n, grant);
    if (!this.#grant) {
      this.#grant = grant;
      grant.addTokens(this);
      grant.owner.touch();
    }
    if (!this.#pools.includes(pool)) this.#pools.push(pool);
    if (reuse > 0) pool.transfer(reservation!, this, reuse);
    if (fresh > 0) pool.take(this, fresh);
    const answer = `GRANTED tokens=${n} feature=${pool.name}\n`;
    if (!this.ctx.replicating || fresh === 0) {
      this.send(answer);
      this.#log('OUT', pool, n, grant);
      return;
    }
    const slot = this.hold();
    this.ctx.replicate({ op: 'tok', h: grant.handle, f: pool.name, n: fresh }, (ok) => {
      if (ok) {
        this.fill(slot, answer);
        this.#log('OUT', pool, n, grant);
        return;
      }
      pool.give(this, fresh);
      this.fill(slot, this.ctx.gate() ?? 'ERR NO_QUORUM\n');
    });
  }

  #release(r: Request): void {
    if (r.malformed || r.positional.length !== 1 || !onlyKeys(r.args, TOKEN_KEYS)) return this.send(ANSWER.BAD_ARGUMENT);
    const n = parseCount(r.positional[0]);
    const pool = this.#pool(r);
    if (n < 1 || !pool || n > pool.heldBy(this)) return this.send(ANSWER.BAD_ARGUMENT);
    this.send(ANSWER.OK);
    pool.give(this, n);
    if (this.ctx.replicating && this.#grant) this.ctx.replicate({ op: 'tok', h: this.#grant.handle, f: pool.name, n: -n });
    this.#log('IN', pool, n, this.#grant);
  }

  #deny(pool: FeaturePool, reason: DenyReason, n: number, grant: Grant): void {
    this.send(`DENIED feature=${pool.name} reason=${reason} available=${pool.available}\n`);
    this.#log('DENIED', pool, n, grant, reason);
  }

  protected release(reason: string): void {
    const grant = this.#grant;
    for (const pool of this.#pools) {
      const n = pool.give(this);
      if (n > 0) {
        if (this.ctx.replicating && grant) this.ctx.replicate({ op: 'tok', h: grant.handle, f: pool.name, n: -n });
        this.#log('IN', pool, n, grant, reason);
      }
    }
    this.#pools.length = 0;
    grant?.removeTokens(this);
  }

  describe(): HolderInfo {
    const g = this.#grant;
    const id = g?.identity;
    return {
      user: id?.user ?? 'unknown',
      host: id?.host ?? this.address,
      display: id?.display ?? this.address,
      version: '',
      handle: g?.handle ?? '',
      port: this.ctx.tokensPort,
      start: this.since,
    };
  }

  #log(event: string, pool: FeaturePool, n: number, grant: Grant | null, reason?: string): void {
    const log = this.ctx.logger;
    if (!log.isLevelEnabled('info')) return;
    const id = grant?.identity;
    const handle = grant ? publicHandle(grant.handle) : undefined;
    const who = id ? `${id.user}@${id.host}` : this.address;
    log.info(
      { event, user: id?.user, host: id?.host, feature: pool.name, count: n, handle, address: this.address, reason },
      `${event}: "${pool.name}" ${who} ${n} token${n === 1 ? '' : 's'}${handle ? ` (${handle})` : ''}${reason ? ` ${event === 'DENIED' ? 'reason=' : ''}${reason}` : ''}`,
    );
  }
}
