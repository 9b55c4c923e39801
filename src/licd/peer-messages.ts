/**
 * The peer protocol of a redundant set (SPEC 4.3, PROTOCOL.md "Peer protocol"): newline-delimited JSON, one
 * object per line, at most PEER_MAX_LINE bytes. Every message is checked against its shape here; a line that is
 * not JSON, has an unknown `t`, or a field of the wrong type is rejected before any state sees it.
 */
import { REQ_PATTERN } from './protocol.ts';

/** Longest peer line. A snapshot is one line per session, so no line grows with the number of sessions. */
export const PEER_MAX_LINE = 64 * 1024;
export const PEER_PROTO = 2;

export type PeerRole = 'waiting' | 'candidate' | 'recovering' | 'following' | 'serving';
const ROLES: readonly PeerRole[] = ['waiting', 'candidate', 'recovering', 'following', 'serving'];

/** One replicated checkout: its seats, and the tokens drawn under its handle per token feature. */
export interface SessionRecord {
  h: string;
  f: string;
  n: number;
  v: string;
  u: string;
  host: string;
  d: string;
  /** Start time (ms since epoch), shown in status. */
  s: number;
  tok: Record<string, number>;
  /**
   * Resume deadline (ms since epoch) a serving member gave this session when it found it without a client; absent
   * while a client holds it. Carried across master changes, so a session nobody resumes is not kept alive by them.
   */
  x?: number;
  /**
   * The CHECKOUT's request id (`req=`), when it had one: a replayed CHECKOUT with the same id re-attaches the session
   * instead of taking a second seat. Optional, so records of members that never send it stay valid.
   */
  rq?: string;
  /**
   * 1: the checkout said `resume=no` (its client never RESUMEs; a new master frees it at once). Absent means
   * resumable, so the records of members that never send it keep their meaning.
   */
  nr?: 1;
}

/** One replicated queued checkout (status only: a queue entry cannot outlive its connection). */
export interface QueueRecord {
  q: string;
  f: string;
  n: number;
  u: string;
  host: string;
  d: string;
  s: number;
}

export type ReplicatedOp =
  | { op: 'grant'; r: SessionRecord }
  | { op: 'end'; h: string }
  /** A client re-attached the session (RESUME): it has no resume deadline any more. */
  | { op: 'res'; h: string }
  | { op: 'tok'; h: string; f: string; n: number }
  | { op: 'qadd'; r: QueueRecord }
  | { op: 'qdel'; q: string };

export interface MemberInfo {
  name: string;
  order: number;
  mode: string;
  /** The sender's own peer address as its peers write it (`host:port`). */
  addr: string;
  license: number;
  tokens: number;
  /**
   * Random per process: a second link from the same process as a live one is a redial (answered `known`, the live
   * link stays), one from another process means the member restarted (its old link is a dead process's).
   */
  boot: string;
}

export type PeerMessage =
  | { t: 'challenge'; v: number; nonce: string }
  | ({ t: 'hello'; nonce: string; mac: string } & MemberInfo)
  /** `known`: this member already has a live link to the dialer's process; the new link only told the dialer who answers. */
  | ({ t: 'welcome'; mac: string; known?: true } & MemberInfo)
  | { t: 'hb'; role: PeerRole; term: number; seq: number; voted: number; master: string | null }
  | { t: 'vote-req'; term: number }
  | { t: 'vote'; term: number; ok: boolean; sterm: number; sseq: number }
  | { t: 'fetch' }
  | { t: 'follow' }
  | { t: 'leave' }
  | { t: 'stale'; term: number }
  | { t: 'snap'; term: number; seq: number; n: number }
  | { t: 'sess'; r: SessionRecord }
  | { t: 'qent'; r: QueueRecord }
  | { t: 'snapend' }
  | ({ t: 'op'; term: number; seq: number } & ReplicatedOp)
  | { t: 'ack'; term: number; seq: number };

const MAX_TEXT = 512;

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function str(v: unknown, min = 1): v is string {
  return typeof v === 'string' && v.length >= min && v.length <= MAX_TEXT;
}
function int(v: unknown, min = 0): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
}
function onlyKeys(o: Record<string, unknown>, keys: readonly string[]): boolean {
  for (const k of Object.keys(o)) if (!keys.includes(k)) return false;
  return true;
}

const SESSION_KEYS = ['h', 'f', 'n', 'v', 'u', 'host', 'd', 's', 'tok', 'x', 'rq', 'nr'] as const;
const QUEUE_KEYS = ['q', 'f', 'n', 'u', 'host', 'd', 's'] as const;

function isSession(r: unknown): r is SessionRecord {
  if (!isObj(r) || !onlyKeys(r, SESSION_KEYS)) return false;
  if (!str(r.h) || !str(r.f) || !int(r.n, 1) || !str(r.v) || !str(r.u) || !str(r.host) || !str(r.d) || !int(r.s)) return false;
  if (!isObj(r.tok) || (r.x !== undefined && !int(r.x))) return false;
  if (r.rq !== undefined && (typeof r.rq !== 'string' || !REQ_PATTERN.test(r.rq))) return false;
  if (r.nr !== undefined && r.nr !== 1) return false;
  const tok = Object.entries(r.tok);
  if (tok.length > 64) return false;
  return tok.every(([f, n]) => str(f) && int(n, 1));
}

function isQueue(r: unknown): r is QueueRecord {
  if (!isObj(r) || !onlyKeys(r, QUEUE_KEYS)) return false;
  return str(r.q) && str(r.f) && int(r.n, 1) && str(r.u) && str(r.host) && str(r.d) && int(r.s);
}

function isMember(m: Record<string, unknown>): boolean {
  return str(m.name) && int(m.order) && str(m.mode) && str(m.addr) && int(m.license) && int(m.tokens) && str(m.boot);
}

const MEMBER_KEYS = ['t', 'name', 'order', 'mode', 'addr', 'license', 'tokens', 'boot', 'mac'];

/** Parses one peer line; null when it is not a well-formed message of this protocol. */
export function parsePeerMessage(line: string): PeerMessage | null {
  let m: unknown;
  try {
    m = JSON.parse(line);
  } catch {
    return null;
  }
  if (!isObj(m) || typeof m.t !== 'string') return null;
  const ok = ((): boolean => {
    switch (m.t) {
      case 'challenge':
        return onlyKeys(m, ['t', 'v', 'nonce']) && int(m.v) && str(m.nonce);
      case 'hello':
        return onlyKeys(m, [...MEMBER_KEYS, 'nonce']) && isMember(m) && str(m.nonce) && str(m.mac, 0);
      case 'welcome':
        return onlyKeys(m, [...MEMBER_KEYS, 'known']) && isMember(m) && str(m.mac, 0) && (m.known === undefined || m.known === true);
      case 'hb':
        return (
          onlyKeys(m, ['t', 'role', 'term', 'seq', 'voted', 'master']) &&
          ROLES.includes(m.role as PeerRole) &&
          int(m.term) &&
          int(m.seq) &&
          int(m.voted) &&
          (m.master === null || str(m.master))
        );
      case 'vote-req':
        return onlyKeys(m, ['t', 'term']) && int(m.term, 1);
      case 'vote':
        return onlyKeys(m, ['t', 'term', 'ok', 'sterm', 'sseq']) && int(m.term, 1) && typeof m.ok === 'boolean' && int(m.sterm) && int(m.sseq);
      case 'fetch':
      case 'follow':
      case 'leave':
      case 'snapend':
        return onlyKeys(m, ['t']);
      case 'stale':
        return onlyKeys(m, ['t', 'term']) && int(m.term);
      case 'snap':
        return onlyKeys(m, ['t', 'term', 'seq', 'n']) && int(m.term) && int(m.seq) && int(m.n);
      case 'sess':
        return onlyKeys(m, ['t', 'r']) && isSession(m.r);
      case 'qent':
        return onlyKeys(m, ['t', 'r']) && isQueue(m.r);
      case 'ack':
        return onlyKeys(m, ['t', 'term', 'seq']) && int(m.term) && int(m.seq);
      case 'op':
        if (!int(m.term, 1) || !int(m.seq, 1)) return false;
        switch (m.op) {
          case 'grant':
          case 'qadd':
            return onlyKeys(m, ['t', 'term', 'seq', 'op', 'r']) && (m.op === 'grant' ? isSession(m.r) : isQueue(m.r));
          case 'end':
          case 'res':
            return onlyKeys(m, ['t', 'term', 'seq', 'op', 'h']) && str(m.h);
          case 'tok':
            return onlyKeys(m, ['t', 'term', 'seq', 'op', 'h', 'f', 'n']) && str(m.h) && str(m.f) && Number.isSafeInteger(m.n) && m.n !== 0;
          case 'qdel':
            return onlyKeys(m, ['t', 'term', 'seq', 'op', 'q']) && str(m.q);
          default:
            return false;
        }
      default:
        return false;
    }
  })();
  return ok ? (m as unknown as PeerMessage) : null;
}

/** One message as its line. */
export function encodePeerMessage(m: PeerMessage): string {
  return JSON.stringify(m) + '\n';
}
