/**
 * What the proxy needs to know of licd lines (SPEC 4.1, src/licd/PROTOCOL.md) while it watches the start of a
 * connection: the kind of a client request (which answers to expect, which lines route) and the meaning of a
 * server answer (a seat granted, a denial worth retrying elsewhere, a member that does not serve). The parsing is
 * licd's own (`parseRequest`), so the proxy and the daemon agree on what a line is.
 */
import { randomBytes } from 'node:crypto';
import { MAX_LINE_BYTES } from '../../common/line-decoder.ts';
import { onlyKeys, parseRequest, PROTO_VERSION } from '../../licd/protocol.ts';

export const enum LineKind {
  /** `HELLO ...`: the proxy may answer it itself before a server is chosen (route: feature). */
  Hello,
  Heartbeat,
  /** `CHECKOUT <feature> ...`: the line that routes (route: feature) and whose answer counts. */
  Checkout,
  /** `RESUME` / `CHECKIN` / `TOKENS` `<handle>`: carries the server that issued the handle. */
  Handle,
  /** `STATUS` as text: its answer is many lines, up to `END`. */
  StatusText,
  Quit,
  /** Any other request (STATUS json, RELEASE...): one answer line. */
  Other,
  /** Blank, unknown verb or malformed: licd would answer an error. */
  Bad,
}

export interface ClientLine {
  kind: LineKind;
  /** The feature of a CHECKOUT; the handle of a Handle line; otherwise ''. */
  arg: string;
  /** A known verb with malformed arguments (licd: BAD_ARGUMENT). */
  malformed: boolean;
  /** A CHECKOUT that carries its own request id (`req=`). */
  hasReq?: boolean;
  /** A well-formed HELLO's `user=` (for the live sessions list). */
  user?: string;
}

const HANDLE_VERBS = new Set(['RESUME', 'CHECKIN', 'TOKENS']);
const HELLO_KEYS = ['user', 'host', 'display', 'pid'] as const;

export function classifyClientLine(line: string): ClientLine {
  const r = parseRequest(line);
  if (r === null) return { kind: LineKind.Bad, arg: '', malformed: false };
  switch (r.verb) {
    case 'HELLO': {
      const ok = !r.malformed && r.positional.length === 0 && r.args !== null && r.args.has('user') && r.args.has('host') && onlyKeys(r.args, HELLO_KEYS);
      return ok ? { kind: LineKind.Hello, arg: '', malformed: false, user: r.args!.get('user')! } : { kind: LineKind.Hello, arg: '', malformed: true };
    }
    case 'HEARTBEAT':
      return { kind: LineKind.Heartbeat, arg: '', malformed: r.malformed || r.positional.length > 0 || r.args !== null };
    case 'CHECKOUT':
      return { kind: LineKind.Checkout, arg: r.positional[0] ?? '', malformed: r.malformed || r.positional.length !== 1, hasReq: r.args?.has('req') ?? false };
    case 'STATUS': {
      const json = r.positional.length === 1 && r.positional[0]!.toLowerCase() === 'json';
      return { kind: json ? LineKind.Other : LineKind.StatusText, arg: '', malformed: r.malformed };
    }
    case 'QUIT':
      return { kind: LineKind.Quit, arg: '', malformed: r.malformed };
    case 'RELEASE':
      return { kind: LineKind.Other, arg: '', malformed: r.malformed };
    default:
      if (HANDLE_VERBS.has(r.verb)) return { kind: LineKind.Handle, arg: r.positional[0] ?? '', malformed: r.malformed || r.positional.length === 0 };
      return { kind: LineKind.Bad, arg: '', malformed: r.malformed };
  }
}

/** What a server's answer line means to the proxy. */
export const enum Answer {
  Granted,
  /** `DENIED ... reason=EXHAUSTED`: no seat free now; another server may have one. */
  Exhausted,
  Denied,
  Queued,
  /** `ERR NOT_MASTER` / `ERR NO_QUORUM`: this member does not serve; the master does. */
  NotServing,
  Other,
}

export function classifyAnswer(line: string): Answer {
  if (line.startsWith('GRANTED')) return Answer.Granted;
  if (line.startsWith('DENIED')) return / reason=EXHAUSTED(\s|$)/.test(line) ? Answer.Exhausted : Answer.Denied;
  if (line.startsWith('QUEUED')) return Answer.Queued;
  if (line.startsWith('ERR NOT_MASTER') || line.startsWith('ERR NO_QUORUM')) return Answer.NotServing;
  return Answer.Other;
}

/** The master a non-serving member names (`ERR NOT_MASTER master=b`), or undefined. */
export function namedMaster(line: string): string | undefined {
  const m = / master=([A-Za-z0-9][A-Za-z0-9_.-]{0,99})(\s|$)/.exec(line);
  return m?.[1];
}

/** The proxy's own answer to HELLO before any server is chosen: the pool stands for the server it will pick. */
export function helloAnswer(pool: string): string {
  return `OK server=${pool} proto=${PROTO_VERSION}\n`;
}

/** SPEC 8.2: a feature that no usable server of the pool serves, answered by the proxy in licd syntax. */
export function unknownFeatureAnswer(feature: string): string {
  return `DENIED feature=${feature} reason=UNKNOWN_FEATURE available=0\n`;
}

/** ` req=` and 32 hex digits (128 random bits). */
const REQ_SUFFIX_BYTES = 5 + 32;

/**
 * A CHECKOUT line (with its line ending) with ` req=<random 128-bit hex>` appended, so that replaying it on a new
 * master re-attaches the seat a dead one granted instead of taking a second (PROTOCOL.md "CHECKOUT"). The line is
 * returned as is when appending would make it longer than a licd line may be.
 */
export function withRequestId(line: Buffer): Buffer {
  const end = line.length >= 2 && line[line.length - 2] === 13 ? line.length - 2 : line.length - 1;
  if (end + REQ_SUFFIX_BYTES > MAX_LINE_BYTES) return line;
  const out = Buffer.allocUnsafe(line.length + REQ_SUFFIX_BYTES);
  line.copy(out, 0, 0, end);
  out.write(` req=${randomBytes(16).toString('hex')}`, end, 'latin1');
  line.copy(out, end + REQ_SUFFIX_BYTES, end);
  return out;
}
