/**
 * The licd line protocol (SPEC 4.1): parsing one request line and the fixed answers. Kept free of sockets so the
 * proxy (handle-affinity routing) and the client can share it.
 */

/** Protocol version announced by HELLO. */
export const PROTO_VERSION = 1;
/** Daemon version shown in status (`license server UP v1.0`). */
export const LICD_VERSION = '1.0';

export type ErrCode =
  | 'BAD_COMMAND'
  | 'BAD_ARGUMENT'
  | 'LINE_TOO_LONG'
  | 'UNKNOWN_FEATURE'
  | 'UNKNOWN_HANDLE'
  | 'EXPIRED'
  | 'NOT_ALLOWED'
  | 'NOT_MASTER'
  | 'NO_QUORUM';

/** Preformatted answers: the hot path writes constants, never builds these. */
export const ANSWER = {
  OK: 'OK\n',
  BAD_COMMAND: 'ERR BAD_COMMAND\n',
  BAD_ARGUMENT: 'ERR BAD_ARGUMENT\n',
  LINE_TOO_LONG: 'ERR LINE_TOO_LONG\n',
  UNKNOWN_FEATURE: 'ERR UNKNOWN_FEATURE\n',
  UNKNOWN_HANDLE: 'ERR UNKNOWN_HANDLE\n',
  EXPIRED: 'ERR EXPIRED\n',
  NOT_ALLOWED: 'ERR NOT_ALLOWED\n',
} as const;

/** Why a request was DENIED (the `reason=` value). */
export type DenyReason =
  /** Not enough free seats or tokens now (or others are queued ahead: the queue is strictly FIFO). */
  | 'EXHAUSTED'
  /** More than the feature's total count: could never be granted, so it is not queued either. */
  | 'COUNT'
  /** Requested version newer than the licensed one. */
  | 'VERSION'
  /** CHECKOUT of a `kind: tokens` feature, or TOKENS from a `kind: seats` feature. */
  | 'KIND';

export interface Request {
  /** Upper-cased verb. */
  verb: string;
  /** Words after the verb that are not `key=value`, in order. */
  positional: readonly string[];
  /** `key=value` words; keys lower-cased. Null when there are none (the common case allocates nothing). */
  args: Map<string, string> | null;
  /**
   * The words after the verb are malformed: control characters, a repeated or empty key, an empty value, or a
   * positional word after a `key=value`. A known verb then answers BAD_ARGUMENT, an unknown one BAD_COMMAND.
   */
  malformed: boolean;
}

/** Control characters (other than tab, a separator) make a line unusable: its words would end up in status text. */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
const SEP = /[ \t]+/;
/** Only spaces and tabs are separators: String.trim() would also drop NBSP, U+2028 and the like at the ends. */
const EDGES = /^[ \t]+|[ \t]+$/g;
const NO_WORDS: readonly string[] = [];

/** Splits a request line; null for a blank line. Verb validity is the caller's business. */
export function parseRequest(line: string): Request | null {
  const words = line.replace(EDGES, '').split(SEP);
  const first = words[0]!;
  if (first === '') return null;
  const verb = first.toUpperCase();
  if (words.length === 1) return { verb, positional: NO_WORDS, args: null, malformed: CONTROL.test(line) };
  const positional: string[] = [];
  let args: Map<string, string> | null = null;
  let malformed = CONTROL.test(line);
  for (let i = 1; i < words.length && !malformed; i++) {
    const w = words[i]!;
    const eq = w.indexOf('=');
    if (eq === -1) {
      if (args) malformed = true; // positional words come first
      else positional.push(w);
      continue;
    }
    const key = w.slice(0, eq).toLowerCase();
    const value = w.slice(eq + 1);
    args ??= new Map();
    if (key === '' || value === '' || args.has(key)) malformed = true;
    else args.set(key, value);
  }
  return { verb, positional, args, malformed };
}

/** True when every key of `args` is in `known`. */
export function onlyKeys(args: Map<string, string> | null, known: readonly string[]): boolean {
  if (!args) return true;
  for (const k of args.keys()) if (!known.includes(k)) return false;
  return true;
}

const COUNT = /^[0-9]{1,9}$/;

/** A whole number >= min written in plain digits, or -1. */
export function parseCount(text: string | undefined, min = 1): number {
  if (text === undefined || !COUNT.test(text)) return -1;
  const n = Number(text);
  return n >= min ? n : -1;
}

export const VERSION_PATTERN = /^\d+(\.\d+)*$/;

/**
 * A CHECKOUT's request id (`req=`, PROTOCOL.md "CHECKOUT"): 16-64 characters, enough for 96+ random bits. It is a
 * secret like a handle: whoever presents it may take over the detached session it names.
 */
export const REQ_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;

/** Compares dotted numeric versions part by part (`2025.10` > `2025.9`; `1.0` == `1`). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.');
  const pb = b.split('.');
  const n = Math.max(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    const x = Number(pa[i] ?? 0);
    const y = Number(pb[i] ?? 0);
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** Handles are `<server>.<hex id>`; returns the server part, or undefined when the text is not a handle. */
export function handleServer(handle: string): string | undefined {
  const dot = handle.lastIndexOf('.');
  if (dot <= 0 || dot === handle.length - 1) return undefined;
  return handle.slice(0, dot);
}
