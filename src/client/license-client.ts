import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { LicenseError, LicenseResponseError, LicenseTimeoutError } from './client-errors.ts';
import { DEFAULT_TIMEOUT, LineConnection, type ConnectOptions, type PendingRequest } from './line-connection.ts';
import { parseResponse, positive, protocolError, single, unexpected, word, type Response } from './protocol-text.ts';

export type { ConnectOptions } from './line-connection.ts';

export interface Grant {
  handle: string;
  feature: string;
  count: number;
}

export interface HelloResult {
  server: string;
  proto: string;
}

export interface CheckoutOptions {
  count?: number;
  version?: string;
  /** Ask to wait for a seat (`queue=1`): the promise then resolves on the GRANTED that follows QUEUED. */
  queue?: boolean;
  /** Called with the queue position when the server answers QUEUED. */
  onQueued?(position: number): void;
  /** How long to wait for a seat after QUEUED. Default 10m; the connection stays usable meanwhile. */
  queueTimeout?: number;
  /** Answer timeout of the CHECKOUT line itself. */
  timeout?: number;
}

/**
 * Resume on connection loss (SPEC 4.3): when the connection drops while this client holds handles, it reconnects
 * to the same host:port (the balancer, which sends it to whichever member serves now), repeats its HELLO, and
 * RESUMEs every held handle. Requests made meanwhile fail with CONNECTION_CLOSED.
 *
 * A CHECKIN in a set is answered OK only once its release is replicated; answered `ERR NO_QUORUM` / `NOT_MASTER`
 * (the master lost its followers or stepped down) or not at all, the release may not have reached the member that
 * serves next, which then keeps the seat as a detached session for `resume_window`. Such a handle is kept as
 * "releasing" (not in `handles`): the resume loop RESUMEs it there and checks it in again (PROTOCOL.md "CHECKIN").
 *
 * It retries often (every 100-200ms) and gives each attempt a short timeout: a new master is elected within a few
 * peer heartbeats, and a client polling slowly would hold its seat in limbo seconds after it could have resumed.
 */
export interface ResumeOptions {
  /** Default true; false: a lost connection is final (onDisconnect), as without redundancy. */
  enabled?: boolean;
  /** First retry delay, doubled on each failure up to maxDelay. Defaults 100ms, 200ms. */
  minDelay?: number;
  maxDelay?: number;
  /** Connect and answer timeout of one attempt's connection, HELLO and RESUMEs (a hung server). Default 1s. */
  attemptTimeout?: number;
  /** Give up (event `lost`, then onDisconnect) after this long without success. Default 60s. */
  giveUpAfter?: number;
}

export interface LicenseClientOptions extends ConnectOptions {
  resume?: ResumeOptions | false;
}

/** Outcome of one resume: handles re-attached, and handles the set no longer knows (their seat is gone). */
export interface ResumeResult {
  resumed: string[];
  /** Handles whose CHECKIN was not confirmed before the loss: resumed and checked in again (or found released). */
  released: string[];
  lost: Array<{ handle: string; code: string }>;
  attempts: number;
  /** From the first failure to the last RESUME answer, ms. */
  gap: number;
}

/**
 * Events of a LicenseClient (it is an EventEmitter; it never emits `error`):
 * - `disconnected` (err): the connection dropped while holding handles (or releasing them); resuming starts.
 * - `reconnecting` ({ attempt, delay }): before each reconnect attempt.
 * - `resumed` (ResumeResult): reconnected; every held handle was resumed or found lost, every releasing one given back.
 * - `lost` (err): gave up; onDisconnect follows.
 */
export interface LicenseClientHooks {
  /**
   * The connection ended for good: closed on request (err undefined), lost without handles to resume, resume
   * turned off, or resuming gave up.
   */
  onDisconnect?(err: LicenseError | undefined): void;
  /** A line that answers nothing in flight (logged by callers that care). */
  onUnsolicited?(line: string): void;
}

interface QueuedWait {
  feature: string;
  resolve(grant: Grant): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

const DEFAULT_QUEUE_TIMEOUT = 10 * 60_000;
/** A STATUS answer longer than this is not a license server talking; fail rather than grow without bound. */
const MAX_STATUS_LINES = 1_000_000;

/**
 * A promise-based client for the licd license port (SPEC 4.1), for the CLI, tests and benches.
 * Answers are matched to requests in order; a GRANTED that arrives after QUEUED, outside any request, goes to the
 * queued checkout of its feature.
 */
export class LicenseClient extends EventEmitter {
  #conn: LineConnection;
  readonly #opts: ConnectOptions;
  readonly #resume: Required<ResumeOptions>;
  readonly #queued: QueuedWait[] = [];
  #hooks: LicenseClientHooks;
  #server: string | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  /** Handles this client holds, for resuming them after a connection loss. */
  readonly #held = new Map<string, Grant>();
  /** Handles checked in without a confirmed release (see ResumeOptions): given back again after a resume. */
  readonly #releasing = new Set<string>();
  #hello: { user: string; host: string; extra: { display?: string; pid?: number } } | null = null;
  /** close / quit / destroy was asked for: a disconnect is then final. */
  #closing = false;
  #resuming = false;

  private constructor(conn: LineConnection, opts: LicenseClientOptions, hooks: LicenseClientHooks) {
    super();
    this.#conn = conn;
    this.#hooks = hooks;
    const { resume, ...connectOpts } = opts;
    this.#opts = connectOpts;
    const r = resume === false ? { enabled: false } : (resume ?? {});
    this.#resume = {
      enabled: r.enabled ?? true,
      minDelay: r.minDelay ?? 100,
      maxDelay: r.maxDelay ?? 200,
      attemptTimeout: r.attemptTimeout ?? 1_000,
      giveUpAfter: r.giveUpAfter ?? 60_000,
    };
    this.#attach(conn);
  }

  #attach(conn: LineConnection): void {
    conn.setHooks({
      intercept: (line, head) => this.#intercept(line, head),
      onUnsolicited: (line) => this.#hooks.onUnsolicited?.(line),
      onDisconnect: (err) => this.#onDisconnect(conn, err),
    });
  }

  static async connect(host: string, port: number, opts: LicenseClientOptions = {}, hooks: LicenseClientHooks = {}): Promise<LicenseClient> {
    const { resume: _resume, ...connectOpts } = opts;
    return new LicenseClient(await LineConnection.open(host, port, connectOpts), opts, hooks);
  }

  /** Handles held now (granted or resumed, not checked in). */
  get handles(): string[] {
    return [...this.#held.keys()];
  }

  /** True while reconnecting and resuming after a connection loss. */
  get resuming(): boolean {
    return this.#resuming;
  }

  get host(): string {
    return this.#conn.host;
  }

  get port(): number {
    return this.#conn.port;
  }

  /** The server name from the HELLO answer. */
  get serverName(): string | undefined {
    return this.#server;
  }

  get connected(): boolean {
    return this.#conn.connected;
  }

  /** Number of checkouts waiting in a server queue. */
  get queuedCount(): number {
    return this.#queued.length;
  }

  get closed(): Promise<void> {
    return this.#conn.closed;
  }

  setHooks(hooks: LicenseClientHooks): void {
    this.#hooks = { ...this.#hooks, ...hooks };
  }

  async hello(user: string, host: string, extra: { display?: string; pid?: number } = {}, opts: { timeout?: number } = {}): Promise<HelloResult> {
    let cmd = `HELLO user=${word('user', user)} host=${word('host', host)}`;
    if (extra.display !== undefined) cmd += ` display=${word('display', extra.display)}`;
    if (extra.pid !== undefined) cmd += ` pid=${extra.pid}`;
    const r = await this.#conn.request(cmd, single(cmd, 'OK'), opts);
    this.#hello = { user, host, extra };
    this.#server = r.args.server;
    return { server: r.args.server ?? '', proto: r.args.proto ?? '' };
  }

  checkout(feature: string, opts: CheckoutOptions = {}): Promise<Grant> {
    let cmd: string;
    try {
      cmd = `CHECKOUT ${word('feature', feature)}`;
      if (opts.count !== undefined) cmd += ` count=${positive('count', opts.count)}`;
      if (opts.version !== undefined) cmd += ` version=${word('version', opts.version)}`;
      if (opts.queue) cmd += ' queue=1';
      // This client never RESUMEs: licd frees the seat as soon as its connection or its master is gone, instead of
      // keeping it for resume_window after a master change (PROTOCOL.md "CHECKOUT").
      if (!this.#resume.enabled) cmd += ' resume=no';
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<Grant>((resolve, reject) => {
      const answered = this.#conn.request<Grant | undefined>(
        cmd,
        (line) => {
          const r = parseResponse(line);
          if (r.verb === 'QUEUED') {
            this.#enqueue(feature, Number(r.args.position ?? 0), opts, resolve, reject);
            return { value: undefined };
          }
          return { value: toGrant(cmd, r) };
        },
        // A request id makes the CHECKOUT idempotent: replayed on a new master (licproxy), it re-attaches the seat a
        // dead master granted instead of taking a second (PROTOCOL.md "CHECKOUT").
        { expectsGrant: true, secretSuffix: ` req=${randomBytes(16).toString('hex')}`, ...(opts.timeout !== undefined ? { timeout: opts.timeout } : {}) },
      );
      answered.then((grant) => grant && resolve(grant), reject);
    }).then((grant) => {
      this.#held.set(grant.handle, grant);
      return grant;
    });
  }

  async heartbeat(): Promise<void> {
    await this.#conn.request('HEARTBEAT', single('HEARTBEAT', 'OK'));
  }

  async checkin(handle: string): Promise<void> {
    const cmd = `CHECKIN ${word('handle', handle)}`;
    const p = this.#conn.request(cmd, single(cmd, 'OK'));
    // No longer held once sent: a connection lost before the OK must not resume a license given back. Until the
    // OK it is releasing: the release may not survive a master change, and then the resume loop completes it.
    if (this.#held.delete(handle) && this.#resume.enabled) this.#releasing.add(handle);
    p.then(
      () => this.#releasing.delete(handle),
      (err: unknown) => {
        if (!unconfirmedRelease(err)) this.#releasing.delete(handle);
      },
    );
    await p;
  }

  /** Re-attaches a handle (SPEC 4.3); the client then holds it. Done automatically after a connection loss. */
  resume(handle: string, opts: { timeout?: number } = {}): Promise<Grant> {
    let cmd: string;
    try {
      cmd = `RESUME ${word('handle', handle)}`;
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#conn.request(cmd, (line) => ({ value: toGrant(cmd, parseResponse(line)) }), { expectsGrant: true, ...opts }).then((g) => {
      this.#held.set(g.handle, g);
      return g;
    });
  }

  /** The lmstat -a style status text (SPEC 4.2), without the closing `END` line. */
  status(opts: { timeout?: number } = {}): Promise<string> {
    const lines: string[] = [];
    return this.#conn.request(
      'STATUS',
      (line) => {
        if (lines.length === 0 && /^ERR\b/.test(line)) throw protocolError('STATUS', parseResponse(line));
        if (line === 'END') return { value: lines.length ? lines.join('\n') + '\n' : '' };
        if (lines.length >= MAX_STATUS_LINES) {
          this.#conn.destroy(); // the rest of the answer would be read as answers to later requests
          throw new LicenseResponseError('STATUS', `more than ${MAX_STATUS_LINES} lines without END`);
        }
        lines.push(line);
        return undefined;
      },
      opts,
    );
  }

  statusJson(opts: { timeout?: number } = {}): Promise<unknown> {
    return this.#conn.request(
      'STATUS json',
      (line) => {
        if (/^ERR\b/.test(line)) throw protocolError('STATUS json', parseResponse(line));
        try {
          return { value: JSON.parse(line) as unknown };
        } catch {
          throw new LicenseResponseError('STATUS json', line);
        }
      },
      opts,
    );
  }

  /** Sends QUIT, waits for OK and for the server to close. */
  async quit(): Promise<void> {
    this.#closing = true;
    this.stopHeartbeat();
    await this.#conn.request('QUIT', single('QUIT', 'OK'));
    await this.#conn.end();
  }

  /** Ends the connection without QUIT (the server frees what it held). */
  async close(): Promise<void> {
    this.#closing = true;
    this.stopHeartbeat();
    await this.#conn.end();
  }

  destroy(): void {
    this.#closing = true;
    this.stopHeartbeat();
    this.#conn.destroy();
  }

  /**
   * Sends HEARTBEAT every `intervalMs` while nothing else is in flight (any request already shows the server the
   * client is alive). A failed heartbeat goes to `onError`; the connection's own close ends the loop.
   */
  startHeartbeat(intervalMs: number, onError?: (err: Error) => void): void {
    this.stopHeartbeat();
    this.#heartbeat = setInterval(() => {
      if (this.#resuming) return;
      if (!this.#conn.connected) return this.stopHeartbeat();
      if (this.#conn.pendingCount > 0) return;
      this.heartbeat().catch((err: Error) => onError?.(err));
    }, intervalMs);
    this.#heartbeat.unref();
  }

  get heartbeating(): boolean {
    return this.#heartbeat !== undefined;
  }

  stopHeartbeat(): void {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  #enqueue(feature: string, position: number, opts: CheckoutOptions, resolve: (g: Grant) => void, reject: (e: Error) => void): void {
    const ms = opts.queueTimeout ?? DEFAULT_QUEUE_TIMEOUT;
    const wait: QueuedWait = {
      feature,
      resolve,
      reject,
      timer: setTimeout(() => {
        this.#removeWait(wait);
        reject(new LicenseTimeoutError(`CHECKOUT ${feature} queue=1 (queued)`, ms));
      }, ms),
    };
    this.#queued.push(wait);
    opts.onQueued?.(position);
  }

  #removeWait(wait: QueuedWait): void {
    const i = this.#queued.indexOf(wait);
    if (i >= 0) this.#queued.splice(i, 1);
    clearTimeout(wait.timer);
  }

  /**
   * A GRANTED or DENIED that no request in flight can expect is the end of a queued checkout. When a CHECKOUT of
   * the same feature is in flight too, the protocol cannot tell the two apart; the in-flight request gets it.
   */
  #intercept(line: string, head: PendingRequest | undefined): boolean {
    if (this.#queued.length === 0 || (head && head.expectsGrant)) return false;
    const c = line.charCodeAt(0);
    if (c !== 71 /* G */ && c !== 68 /* D */) return false;
    const r = parseResponse(line);
    if (r.verb !== 'GRANTED' && r.verb !== 'DENIED') return false;
    const wait = this.#queued.find((w) => w.feature === r.args.feature) ?? this.#queued[0]!;
    this.#removeWait(wait);
    try {
      wait.resolve(toGrant(`CHECKOUT ${wait.feature} queue=1`, r));
    } catch (err) {
      wait.reject(err as Error);
    }
    return true;
  }

  #onDisconnect(conn: LineConnection, err: LicenseError | undefined): void {
    if (conn !== this.#conn) return;
    for (const wait of this.#queued.splice(0)) {
      clearTimeout(wait.timer);
      wait.reject(err ?? new LicenseError('CONNECTION_CLOSED', `CHECKOUT ${wait.feature}: connection closed while queued`));
    }
    if (this.#resuming) return; // the resume loop sees its own connection fail
    if (!this.#closing && this.#resume.enabled && (this.#held.size > 0 || this.#releasing.size > 0)) {
      void this.#reconnect(err ?? new LicenseError('CONNECTION_CLOSED', `${this.host}:${this.port} closed the connection`));
      return;
    }
    this.stopHeartbeat();
    this.#hooks.onDisconnect?.(err);
  }

  /**
   * Completes a release whose CHECKIN was not confirmed: RESUME (the full handle: the same capability as before) and
   * CHECKIN on `conn`. UNKNOWN_HANDLE on RESUME means the release did reach the serving member. Throws otherwise
   * (NO_QUORUM, NOT_MASTER, timeout): the attempt is retried.
   */
  async #releaseAgain(conn: LineConnection, handle: string, timeout: number): Promise<void> {
    const resume = `RESUME ${handle}`;
    try {
      await conn.request(resume, (line) => ({ value: toGrant(resume, parseResponse(line)) }), { expectsGrant: true, timeout });
    } catch (err) {
      if (err instanceof LicenseError && err.code === 'UNKNOWN_HANDLE') return;
      throw err;
    }
    const checkin = `CHECKIN ${handle}`;
    await conn.request(checkin, single(checkin, 'OK'), { timeout });
  }

  async #reconnect(cause: LicenseError): Promise<void> {
    this.#resuming = true;
    this.emit('disconnected', cause);
    const started = Date.now();
    const { minDelay, maxDelay, giveUpAfter, attemptTimeout } = this.#resume;
    const timeout = Math.min(attemptTimeout, this.#opts.timeout ?? attemptTimeout);
    let delay = minDelay;
    let attempts = 0;
    let last: unknown = cause;
    while (!this.#closing) {
      attempts++;
      this.emit('reconnecting', { attempt: attempts, delay });
      let conn: LineConnection | undefined;
      try {
        // The attempt's connect is bounded; later requests on the connection keep the caller's answer timeout.
        conn = await LineConnection.open(this.host, this.port, { ...this.#opts, timeout, requestTimeout: this.#opts.requestTimeout ?? this.#opts.timeout ?? DEFAULT_TIMEOUT });
        if (this.#closing) {
          conn.destroy();
          break;
        }
        this.#conn = conn;
        this.#attach(conn);
        if (this.#hello) await this.hello(this.#hello.user, this.#hello.host, this.#hello.extra, { timeout });
        const result: ResumeResult = { resumed: [], released: [], lost: [], attempts, gap: 0 };
        for (const handle of [...this.#held.keys()]) {
          try {
            await this.resume(handle, { timeout });
            result.resumed.push(handle);
          } catch (err) {
            const code = err instanceof LicenseError ? err.code : 'ERROR';
            // Only a definite "no such session" loses it; NOT_MASTER / NO_QUORUM mean "not here yet": retry.
            if (code !== 'UNKNOWN_HANDLE') throw err;
            this.#held.delete(handle);
            result.lost.push({ handle, code });
          }
        }
        for (const handle of [...this.#releasing]) {
          await this.#releaseAgain(conn, handle, timeout);
          this.#releasing.delete(handle);
          result.released.push(handle);
        }
        result.gap = Date.now() - started;
        this.#resuming = false;
        this.emit('resumed', result);
        if (!conn.connected) this.#onDisconnect(conn, undefined);
        return;
      } catch (err) {
        last = err;
        if (conn && conn === this.#conn) conn.destroy();
      }
      if (Date.now() - started >= giveUpAfter) break;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(maxDelay, delay * 2);
    }
    this.#resuming = false;
    // Not given back by this client after all: the serving member frees them when resume_window ends.
    this.#releasing.clear();
    this.stopHeartbeat();
    const err = last instanceof LicenseError ? last : new LicenseError('CONNECTION_CLOSED', String(last));
    if (!this.#closing) this.emit('lost', err);
    this.#hooks.onDisconnect?.(this.#closing ? undefined : err);
  }
}

/**
 * CHECKIN answers after which the release may be missing on the member that serves next: quorum lost, stepped
 * down, or no answer (connection lost, timed out). OK and UNKNOWN_HANDLE are final.
 */
function unconfirmedRelease(err: unknown): boolean {
  if (!(err instanceof LicenseError)) return false;
  return ['NO_QUORUM', 'NOT_MASTER', 'CONNECTION_CLOSED', 'TIMEOUT'].includes(err.code);
}

/** Opens a license-port connection (HELLO is up to the caller). */
export function connect(host: string, port: number, opts: LicenseClientOptions = {}, hooks: LicenseClientHooks = {}): Promise<LicenseClient> {
  return LicenseClient.connect(host, port, opts, hooks);
}

function toGrant(command: string, r: Response): Grant {
  if (r.verb !== 'GRANTED') throw unexpected(command, r);
  const count = Number(r.args.count ?? 1);
  if (!r.args.handle || !Number.isInteger(count)) throw new LicenseResponseError(command, r.line);
  return { handle: r.args.handle, feature: r.args.feature ?? '', count };
}
