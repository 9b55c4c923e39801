import { LpxError } from '../common/errors.ts';

/**
 * Failures of the licd protocol client. Every class carries a stable `code`: the server's ERR code for protocol
 * errors (`UNKNOWN_HANDLE`, `NOT_MASTER`, ...), or one of the client's own codes below, so callers match codes,
 * never message text. Messages are one line naming the command and the server's answer.
 */
export type ClientErrorCode =
  | 'DENIED'
  | 'TIMEOUT'
  | 'CONNECT_FAILED'
  | 'CONNECTION_CLOSED'
  | 'BAD_RESPONSE'
  | 'BAD_REQUEST';

export class LicenseError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'LicenseError';
    this.code = code;
  }
}

/** The server answered `ERR <CODE> [key=value ...]`. */
export class LicenseProtocolError extends LicenseError {
  /** The key=value arguments after the code, e.g. `{ master: 'primary' }` for `ERR NOT_MASTER master=primary`. */
  readonly details: Readonly<Record<string, string>>;
  readonly command: string;
  constructor(code: string, command: string, line: string, details: Record<string, string>) {
    super(code, `${command} answered ${line}`);
    this.name = 'LicenseProtocolError';
    this.details = details;
    this.command = command;
  }
}

/** The server answered `DENIED feature=<f> reason=<code> available=<n>`. */
export class LicenseDeniedError extends LicenseError {
  readonly feature: string;
  readonly reason: string;
  readonly available: number | undefined;
  constructor(command: string, line: string, args: Record<string, string>) {
    super('DENIED', `${command} answered ${line}`);
    this.name = 'LicenseDeniedError';
    this.feature = args.feature ?? '';
    this.reason = args.reason ?? '';
    this.available = args.available !== undefined && /^\d+$/.test(args.available) ? Number(args.available) : undefined;
  }
}

export class LicenseTimeoutError extends LicenseError {
  constructor(what: string, ms: number) {
    super('TIMEOUT', `${what}: no answer within ${ms}ms`);
    this.name = 'LicenseTimeoutError';
  }
}

export class LicenseConnectionError extends LicenseError {
  constructor(code: 'CONNECT_FAILED' | 'CONNECTION_CLOSED', message: string) {
    super(code, message);
    this.name = 'LicenseConnectionError';
  }
}

/** The server sent something this client cannot read (a malformed or unexpected answer). */
export class LicenseResponseError extends LicenseError {
  constructor(command: string, line: string) {
    super('BAD_RESPONSE', `${command}: unexpected answer ${JSON.stringify(line.length > 200 ? line.slice(0, 200) + '...' : line)}`);
    this.name = 'LicenseResponseError';
  }
}

/**
 * One-line operator wording of a client failure, for the CLI (`denied LS-DYNA: EXHAUSTED, 0 available`).
 * Anything that is not a client error keeps its own message.
 */
export function describeClientError(err: unknown): string {
  if (err instanceof LicenseDeniedError) {
    const avail = err.available !== undefined ? `, ${err.available} available` : '';
    return `denied ${err.feature || '(feature)'}: ${err.reason || 'no reason given'}${avail}`;
  }
  if (err instanceof Error) return err.message;
  return String(err);
}

/** A client failure as the LpxError the CLI reports: exit 1 for a bad argument, else exit 2. */
export function asLpxError(err: unknown, prefix = ''): LpxError {
  if (err instanceof LpxError) return err;
  const message = prefix + describeClientError(err);
  if (err instanceof LicenseError) {
    if (err.code === 'BAD_REQUEST') return new LpxError('LPX_ERR_USAGE', message);
    if (err.code === 'TIMEOUT') return new LpxError('LPX_ERR_TIMEOUT', message);
    if (err.code === 'CONNECT_FAILED' || err.code === 'CONNECTION_CLOSED') return new LpxError('LPX_ERR_CONNECT', message);
  }
  return new LpxError('LPX_ERR_PROTOCOL', message);
}
