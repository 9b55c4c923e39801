/**
 * The licd protocol's text as the client sees it (SPEC 4.1): answer lines split into verb, ERR code and key=value
 * arguments, answers turned into typed errors, and request arguments checked to be single words.
 */
import { LicenseDeniedError, LicenseError, LicenseProtocolError, LicenseResponseError } from './client-errors.ts';

/** One answer line of the licd protocol (SPEC 4.1), split into its verb, ERR code and key=value arguments. */
export interface Response {
  /** `OK`, `GRANTED`, `DENIED`, `QUEUED`, `ERR`, or the first word of anything else, upper-cased. */
  verb: string;
  /** For `ERR <CODE>`: the code. */
  code?: string;
  args: Record<string, string>;
  line: string;
}

export function parseResponse(line: string): Response {
  const words = line.trim().split(/\s+/);
  const verb = (words[0] ?? '').toUpperCase();
  const args: Record<string, string> = Object.create(null);
  let first = 1;
  let code: string | undefined;
  if (verb === 'ERR' && words[1] && !words[1].includes('=')) {
    code = words[1];
    first = 2;
  }
  for (let i = first; i < words.length; i++) {
    const w = words[i]!;
    const eq = w.indexOf('=');
    if (eq > 0) args[w.slice(0, eq)] = w.slice(eq + 1);
  }
  return code === undefined ? { verb, args, line } : { verb, code, args, line };
}

/** A protocol argument must be one word: a space or a newline would change the command the server reads. */
export function isWord(value: string): boolean {
  return value.length > 0 && !/[\s=]/.test(value);
}

/** Reads a one-line answer that must start with `verb`. */
export function single(command: string, verb: string): (line: string) => { value: Response } {
  return (line) => {
    const r = parseResponse(line);
    if (r.verb === verb) return { value: r };
    throw unexpected(command, r);
  };
}

export function protocolError(command: string, r: Response): LicenseProtocolError {
  return new LicenseProtocolError(r.code ?? 'UNKNOWN', command, r.line, r.args);
}

export function unexpected(command: string, r: Response): LicenseError {
  if (r.verb === 'ERR') return protocolError(command, r);
  if (r.verb === 'DENIED') return new LicenseDeniedError(command, r.line, r.args);
  return new LicenseResponseError(command, r.line);
}

export function word(name: string, value: string): string {
  if (typeof value !== 'string' || !isWord(value)) {
    throw new LicenseError('BAD_REQUEST', `${name} must be one word without spaces or "=", got ${JSON.stringify(value)}`);
  }
  return value;
}

export function positive(name: string, n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new LicenseError('BAD_REQUEST', `${name} must be a whole number >= 1, got ${n}`);
  return n;
}
