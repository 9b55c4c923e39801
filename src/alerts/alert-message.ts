/**
 * What an alert says, before it is formatted for Slack, Teams or plain JSON: one event of SPEC 10 with the pool and
 * server it concerns, and how many like it were folded into it by `min_interval`.
 */
import type { AlertEventName } from '../config/proxy-config.ts';
import { printable } from '../common/printable.ts';

export interface AlertMessage {
  event: AlertEventName;
  /** Date.now() when it happened. */
  time: number;
  pool?: string;
  server?: string;
  from?: string;
  to?: string;
  reason: string;
  /** feature_above: the feature and its use at the last check. */
  feature?: string;
  used?: number;
  issued?: number;
  /** Events of the same kind for the same pool and server not sent since the previous message (min_interval). */
  suppressed: number;
  /** With `suppressed`: when the first of them happened. */
  suppressedSince?: number;
}

/** Text from servers and files (check reasons, lmstat names) bounded and stripped of control bytes. */
export function clean(text: string, max = 300): string {
  const p = printable(text);
  return p.length > max ? `${p.slice(0, max)}…` : p;
}

/** One line, e.g. `server lmx/a is DOWN (was UP): connect refused`. */
export function headline(m: AlertMessage): string {
  const where = m.server !== undefined ? `${clean(m.pool ?? '?', 100)}/${clean(m.server, 100)}` : clean(m.pool ?? '', 100);
  switch (m.event) {
    case 'down':
      return `server ${where} is DOWN${m.from ? ` (was ${clean(m.from, 40)})` : ''}`;
    case 'up':
      return `server ${where} is UP again`;
    case 'failover':
      return `pool ${where}: failover${m.to ? ` to ${clean(m.to, 100)}` : ''}${m.from ? ` (from ${clean(m.from, 100)})` : ''}`;
    case 'failback':
      return `pool ${where}: failback${m.to ? ` to ${clean(m.to, 100)}` : ''}${m.from ? ` (from ${clean(m.from, 100)})` : ''}`;
    case 'pool_unavailable':
      return `pool ${where} is UNAVAILABLE: no server takes new clients`;
    case 'reload_failed':
      return 'configuration reload failed (running configuration kept)';
    case 'feature_above': {
      const pct = m.issued ? Math.round(((m.used ?? 0) / m.issued) * 100) : 0;
      return `feature ${clean(m.feature ?? '?', 100)} on ${where}: ${m.used ?? '?'} of ${m.issued ?? '?'} in use (${pct}%)`;
    }
  }
}

/** `(3 more since 14:02:10Z not sent: min_interval)`, or '' when none were folded in. */
export function suppressedNote(m: AlertMessage): string {
  if (m.suppressed <= 0) return '';
  const since = m.suppressedSince !== undefined ? ` since ${new Date(m.suppressedSince).toISOString()}` : '';
  return `(${m.suppressed} more ${m.suppressed === 1 ? 'event' : 'events'} like this${since} not sent separately: min_interval)`;
}
