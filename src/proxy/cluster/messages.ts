/**
 * What the cluster primary and its worker processes say to each other over the IPC channel (node:cluster with
 * `serialization: 'advanced'`, so a ProxyConfig travels as it is). One closed union per direction.
 */
import type { ProxyConfig } from '../../config/proxy-config.ts';
import type { RuntimeSnapshot } from '../runtime.ts';
import type { ServerMirror } from '../server.ts';
import type { SessionList, SessionQuery } from '../session-list.ts';

/** [pool, server, state]: one server's state as the primary decided it. */
export type MirrorEntry = readonly [pool: string, server: string, state: ServerMirror];

export type ToWorker =
  /** First message: which slot this worker fills, its configuration, and every server's current state. */
  | { t: 'start'; index: number; workers: number; config: ProxyConfig; states: MirrorEntry[]; pretty: boolean }
  /** A reload's first half (listeners opened, nothing switched); answered by `applied` with the same `seq`. */
  | { t: 'apply'; seq: number; config: ProxyConfig }
  /** The prepared reload's second half: switch to it (`commit`), or close what it opened (`abort`). */
  | { t: 'commit' }
  | { t: 'abort' }
  | { t: 'servers'; states: MirrorEntry[] }
  /** Answer to `aff-ask`: the bound server, or null: the worker balances and tells the primary with `aff-bind`. */
  | { t: 'aff'; id: number; server: string | null }
  | { t: 'snapshot'; seq: number }
  /** GET /api/sessions: this worker's open connections matching the query (bounded by its limit). */
  | { t: 'sessions'; seq: number; query: SessionQuery }
  | { t: 'stop'; graceMs: number };

export type ToPrimary =
  /** The worker listens for messages now (messages sent before that would be lost): the primary sends `start`. */
  | { t: 'hello' }
  | { t: 'ready'; pid: number }
  | { t: 'failed'; error: string }
  | { t: 'applied'; seq: number; error: string | null }
  | { t: 'snapshot'; seq: number; snapshot: RuntimeSnapshot }
  | { t: 'sessions'; seq: number; list: SessionList }
  /** Passive health: a client's connect to the server failed in this worker. */
  | { t: 'report'; pool: string; server: string; reason: string }
  /** Affinity by source: the binding of `ip` in `pool`, taken for connection `id` of this worker. */
  | { t: 'aff-ask'; id: number; pool: string; ip: string }
  /** Connection `id` was balanced to `server` (null: it found none, the reservation is given up). */
  | { t: 'aff-bind'; id: number; pool: string; ip: string; server: string | null }
  | { t: 'aff-release'; id: number };

export function isToWorker(m: unknown): m is ToWorker {
  return typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string';
}

export const isToPrimary = isToWorker as (m: unknown) => m is ToPrimary;
