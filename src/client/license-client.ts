import { LicenseError, LicenseResponseError, LicenseTimeoutError } from './client-errors.ts';
import { LineConnection, type ConnectOptions, type PendingRequest } from './line-connection.ts';
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

export interface LicenseClientHooks {
  /** See LineConnectionHooks.onDisconnect: where resume-on-disconnect plugs in. */
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
export class LicenseClient {
  readonly #conn: LineConnection;
  readonly #queued: QueuedWait[] = [];
  #hooks: LicenseClientHooks;
  #server: string | undefined;
  #heartbeat: NodeJS.Timeout | undefined;

  private constructor(conn: LineConnection, hooks: LicenseClientHooks) {
    this.#conn = conn;
    this.#hooks = hooks;
    conn.setHooks({
      intercept: (line, head) => this.#intercept(line, head),
      onUnsolicited: (line) => this.#hooks.onUnsolicited?.(line),
      onDisconnect: (err) => this.#onDisconnect(err),
    });
  }

  static async connect(host: string, port: number, opts: ConnectOptions = {}, hooks: LicenseClientHooks = {}): Promise<LicenseClient> {
    return new LicenseClient(await LineConnection.open(host, port, opts), hooks);
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

  async hello(user: string, host: string, extra: { display?: string; pid?: number } = {}): Promise<HelloResult> {
    let cmd = `HELLO user=${word('user', user)} host=${word('host', host)}`;
    if (extra.display !== undefined) cmd += ` display=${word('display', extra.display)}`;
    if (extra.pid !== undefined) cmd += ` pid=${extra.pid}`;
    const r = await this.#conn.request(cmd, single(cmd, 'OK'));
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
        { expectsGrant: true, ...(opts.timeout !== undefined ? { timeout: opts.timeout } : {}) },
      );
      answered.then((grant) => grant && resolve(grant), reject);
    });
  }

  async heartbeat(): Promise<void> {
    await this.#conn.request('HEARTBEAT', single('HEARTBEAT', 'OK'));
  }

  async checkin(handle: string): Promise<void> {
    const cmd = `CHECKIN ${word('handle', handle)}`;
    await this.#conn.request(cmd, single(cmd, 'OK'));
  }

  resume(handle: string): Promise<Grant> {
    let cmd: string;
    try {
      cmd = `RESUME ${word('handle', handle)}`;
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#conn.request(cmd, (line) => ({ value: toGrant(cmd, parseResponse(line)) }), { expectsGrant: true });
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
    this.stopHeartbeat();
    await this.#conn.request('QUIT', single('QUIT', 'OK'));
    await this.#conn.end();
  }

  /** Ends the connection without QUIT (the server frees what it held). */
  async close(): Promise<void> {
    this.stopHeartbeat();
    await this.#conn.end();
  }

  destroy(): void {
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

  #onDisconnect(err: LicenseError | undefined): void {
    this.stopHeartbeat();
    for (const wait of this.#queued.splice(0)) {
      clearTimeout(wait.timer);
      wait.reject(err ?? new LicenseError('CONNECTION_CLOSED', `CHECKOUT ${wait.feature}: connection closed while queued`));
    }
    this.#hooks.onDisconnect?.(err);
  }
}

/** Opens a license-port connection (HELLO is up to the caller). */
export function connect(host: string, port: number, opts: ConnectOptions = {}, hooks: LicenseClientHooks = {}): Promise<LicenseClient> {
  return LicenseClient.connect(host, port, opts, hooks);
}

function toGrant(command: string, r: Response): Grant {
  if (r.verb !== 'GRANTED') throw unexpected(command, r);
  const count = Number(r.args.count ?? 1);
  if (!r.args.handle || !Number.isInteger(count)) throw new LicenseResponseError(command, r.line);
  return { handle: r.args.handle, feature: r.args.feature ?? '', count };
}
