/**
 * The messages on a cluster's notify channel (pub/sub): an admin change to re-read, or a new event of the shared
 * history. What arrives is checked before use: any client of the Redis may publish on the channel.
 */
import type { ProxyEvent } from '../event-log.ts';

export type Notice = { t: 'admin'; from: string } | { t: 'event'; e: ProxyEvent };

/** Larger messages are not ours: dropped unread. */
const MAX_NOTICE = 64 * 1024;

export function parseNotice(text: string): Notice | null {
  if (text.length > MAX_NOTICE) return null;
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof m !== 'object' || m === null) return null;
  const o = m as Record<string, unknown>;
  if (o.t === 'admin' && typeof o.from === 'string') return { t: 'admin', from: o.from };
  if (o.t === 'event') {
    const e = parseEvent(o.e);
    return e === null ? null : { t: 'event', e };
  }
  return null;
}

const KINDS = new Set(['server', 'failover', 'failback', 'pool', 'reload', 'admin', 'worker']);

/** An event as stored in the shared history, or null when it is not one. */
export function parseEvent(v: unknown): ProxyEvent | null {
  if (typeof v === 'string') {
    if (v.length > MAX_NOTICE) return null;
    try {
      v = JSON.parse(v);
    } catch {
      return null;
    }
  }
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (typeof o.time !== 'number' || typeof o.kind !== 'string' || !KINDS.has(o.kind) || typeof o.reason !== 'string') return null;
  const e: ProxyEvent = { time: o.time, kind: o.kind as ProxyEvent['kind'], reason: o.reason.slice(0, 1000) };
  for (const k of ['pool', 'server', 'from', 'to', 'instance'] as const) if (typeof o[k] === 'string') e[k] = (o[k] as string).slice(0, 200);
  return e;
}
