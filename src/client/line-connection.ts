import { connect as netConnect, type Socket } from 'node:net';
import {
  LicenseConnectionError,
  LicenseError,
  LicenseTimeoutError,
  type LicenseError as LicenseErrorType,
} from './client-errors.ts';

export interface ConnectOptions {
  /** Connect timeout, and the default answer timeout of every request. Default 5s. */
  timeout?: number;
  /** Answer timeout of requests, when it should differ from the connect timeout. */
  requestTimeout?: number;
  localAddress?: string;
  /** Longest answer line accepted (STATUS json is one line). Default 16 MiB. */
  maxLineLength?: number;
}

export interface LineConnectionHooks {
  /**
   * Called once when the connection ends, for whatever reason (`err` undefined on a clean close we asked for).
   * The hook for a later resume-on-disconnect: a client can reconnect and RESUME its handles from here.
   */
  onDisconnect?(err: LicenseErrorType | undefined): void;
  /**
   * Sees every line before the pending request does; returns true when it consumed the line. Used for answers that
   * belong to no request in flight (the GRANTED that ends a QUEUED checkout).
   */
  intercept?(line: string, head: PendingRequest | undefined): boolean;
  /** A line that nothing claimed. */
  onUnsolicited?(line: string): void;
}

/** One request in flight. `onLine` returns true when the answer is complete. */
export interface PendingRequest {
  readonly command: string;
  /** True when the answer of this request may be a GRANTED line (CHECKOUT, RESUME, TOKENS). */
  readonly expectsGrant: boolean;
  onLine(line: string): boolean;
  fail(err: Error): void;
  timer: NodeJS.Timeout | undefined;
}

export const DEFAULT_TIMEOUT = 5_000;
const DEFAULT_MAX_LINE = 16 * 1024 * 1024;

/**
 * A text-line connection with requests answered in order (SPEC 4.1). It owns the socket, the line splitting,
 * the FIFO of requests and their timeouts; the license and token clients only say how an answer is read.
 *
 * A request that times out destroys the connection: a late answer would otherwise be read as the answer to the
 * next request, and there is no request id in the protocol to tell them apart.
 */
export class LineConnection {
  readonly host: string;
  readonly port: number;
  readonly requestTimeout: number;
  readonly #socket: Socket;
  readonly #pending: PendingRequest[] = [];
  readonly #maxLine: number;
  #hooks: LineConnectionHooks;
  #buffer = '';
  #closed = false;
  #closing = false;
  #closeError: LicenseError | undefined;
  readonly #closedPromise: Promise<void>;

  private constructor(socket: Socket, host: string, port: number, opts: ConnectOptions, hooks: LineConnectionHooks) {
    this.#socket = socket;
    this.host = host;
    this.port = port;
    this.requestTimeout = opts.requestTimeout ?? opts.timeout ?? DEFAULT_TIMEOUT;
    this.#maxLine = opts.maxLineLength ?? DEFAULT_MAX_LINE;
    this.#hooks = hooks;
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    socket.on('data', (chunk: string) => this.#onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.#closeError ??= new LicenseConnectionError('CONNECTION_CLOSED', `${this.#where()}: ${err.code ?? err.message}`);
    });
    this.#closedPromise = new Promise((resolve) => {
      socket.on('close', () => {
        this.#onClose();
        resolve();
      });
    });
  }

  static open(host: string, port: number, opts: ConnectOptions = {}, hooks: LineConnectionHooks = {}): Promise<LineConnection> {
    const timeout = opts.timeout ?? DEFAULT_TIMEOUT;
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host, port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new LicenseConnectionError('CONNECT_FAILED', `connect to ${host}:${port}: no answer within ${timeout}ms`));
      }, timeout);
      const onError = (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        socket.destroy();
        reject(new LicenseConnectionError('CONNECT_FAILED', `connect to ${host}:${port}: ${describeConnectError(err)}`));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(new LineConnection(socket, host, port, opts, hooks));
      });
    });
  }

  get connected(): boolean {
    return !this.#closed && !this.#closing;
  }

  get pendingCount(): number {
    return this.#pending.length;
  }

  get localPort(): number | undefined {
    return this.#socket.localPort;
  }

  /** Resolves when the socket has closed. */
  get closed(): Promise<void> {
    return this.#closedPromise;
  }

  setHooks(hooks: LineConnectionHooks): void {
    this.#hooks = { ...this.#hooks, ...hooks };
  }

  /**
   * Sends one command line and reads its answer: `read` gets each answer line and returns `undefined` while it
   * wants more, or `{ value }` when done; it may throw to fail the request.
   */
  request<T>(
    command: string,
    read: (line: string) => { value: T } | undefined,
    opts: { timeout?: number; expectsGrant?: boolean; secretSuffix?: string } = {},
  ): Promise<T> {
    if (!this.connected) {
      return Promise.reject(this.#closeError ?? new LicenseConnectionError('CONNECTION_CLOSED', `${command}: ${this.#where()} is closed`));
    }
    const timeout = opts.timeout ?? this.requestTimeout;
    return new Promise<T>((resolve, reject) => {
      const pending: PendingRequest = {
        command,
        expectsGrant: opts.expectsGrant ?? false,
        timer: undefined,
        onLine: (line) => {
          let result: { value: T } | undefined;
          try {
            result = read(line);
          } catch (err) {
            reject(err);
            return true;
          }
          if (!result) return false;
          resolve(result.value);
          return true;
        },
        fail: reject,
      };
      pending.timer = setTimeout(() => {
        pending.timer = undefined;
        const err = new LicenseTimeoutError(`${command} to ${this.#where()}`, timeout);
        const i = this.#pending.indexOf(pending);
        if (i >= 0) this.#pending.splice(i, 1);
        reject(err);
        this.#closeError ??= new LicenseConnectionError('CONNECTION_CLOSED', `${this.#where()}: closed after ${command} timed out`);
        this.#socket.destroy();
      }, timeout);
      this.#pending.push(pending);
      // A secret part of the line (a CHECKOUT's req=) is written but never in an error message.
      this.#socket.write(opts.secretSuffix === undefined ? command + '\n' : `${command}${opts.secretSuffix}\n`);
    });
  }

  /** Writes a line that expects no answer. */
  send(line: string): void {
    if (this.connected) this.#socket.write(line + '\n');
  }

  /** Ends the connection cleanly (FIN) and resolves once it is closed. */
  async end(): Promise<void> {
    if (!this.#closed) {
      this.#closing = true;
      this.#socket.end();
      const timer = setTimeout(() => this.#socket.destroy(), this.requestTimeout);
      await this.#closedPromise;
      clearTimeout(timer);
    }
  }

  destroy(): void {
    this.#closing = true;
    this.#socket.destroy();
  }

  #where(): string {
    return `${this.host}:${this.port}`;
  }

  #onData(chunk: string): void {
    let start = 0;
    let nl = chunk.indexOf('\n');
    if (nl < 0) {
      this.#buffer += chunk;
      this.#checkLength();
      return;
    }
    let text = chunk;
    if (this.#buffer) {
      text = this.#buffer + chunk;
      this.#buffer = '';
      nl = text.indexOf('\n');
    }
    while (nl >= 0) {
      const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      this.#dispatch(text.slice(start, end));
      if (this.#closed) return;
      start = nl + 1;
      nl = text.indexOf('\n', start);
    }
    if (start < text.length) {
      this.#buffer = text.slice(start);
      this.#checkLength();
    }
  }

  #checkLength(): void {
    if (this.#buffer.length > this.#maxLine) {
      this.#buffer = '';
      this.#closeError ??= new LicenseConnectionError('CONNECTION_CLOSED', `${this.#where()}: answer line longer than ${this.#maxLine} bytes`);
      this.#socket.destroy();
    }
  }

  #dispatch(line: string): void {
    const head = this.#pending[0];
    if (this.#hooks.intercept?.(line, head)) return;
    if (!head) {
      this.#hooks.onUnsolicited?.(line);
      return;
    }
    if (head.onLine(line)) {
      this.#pending.shift();
      if (head.timer) clearTimeout(head.timer);
    }
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    const err =
      this.#closeError ??
      new LicenseConnectionError('CONNECTION_CLOSED', `${this.#where()} closed the connection`);
    for (const p of this.#pending.splice(0)) {
      if (p.timer) clearTimeout(p.timer);
      p.fail(err);
    }
    this.#hooks.onDisconnect?.(this.#closing && !this.#closeError ? undefined : err);
  }
}

/** Words for the errors an operator meets when connecting, with the code kept for searching. */
function describeConnectError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connection refused (nothing listens there) [ECONNREFUSED]';
    case 'ECONNRESET':
      return 'connection reset by the peer [ECONNRESET]';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `host unreachable [${err.code}]`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `unknown host name [${err.code}]`;
    default:
      return err.code ?? err.message;
  }
}
