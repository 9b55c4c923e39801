/**
 * The query string of `/api/usage`, `/api/usage.csv` and `/stats/usage`: `feature`, `pool`, `server`, `from`, `to`
 * (ISO 8601 UTC time or date, or epoch milliseconds) and `format` (`json` | `csv`). Anything else, a repeated key,
 * an unreadable time or an empty range is refused with one line for a 400 answer.
 */
import type { UsageQuery } from './usage-recorder.ts';

/** Without `from`: the last week before `to`. */
export const DEFAULT_RANGE_MS = 7 * 86_400_000;
const KEYS = ['feature', 'pool', 'server', 'from', 'to', 'format'] as const;
const MAX_VALUE = 200;

export type ParsedUsageQuery = { ok: true; query: UsageQuery; format: 'json' | 'csv' | null } | { ok: false; message: string };

export function parseUsageQuery(url: string | undefined, now: number): ParsedUsageQuery {
  const q = url?.indexOf('?') ?? -1;
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(q === -1 ? '' : url!.slice(q + 1));
  } catch {
    return { ok: false, message: 'query string: unreadable' };
  }
  const seen = new Map<string, string>();
  for (const [key, value] of params) {
    if (!(KEYS as readonly string[]).includes(key)) {
      return { ok: false, message: `unknown query parameter ${show(key)} (known: ${KEYS.join(', ')})` };
    }
    if (seen.has(key)) return { ok: false, message: `query parameter ${key} given twice` };
    if (value.length > MAX_VALUE) return { ok: false, message: `${key}: longer than ${MAX_VALUE} characters` };
    if (/[\u0000-\u001f\u007f]/.test(value)) return { ok: false, message: `${key}: control character in value` };
    seen.set(key, value);
  }
  const to = seen.has('to') ? parseTime(seen.get('to')!) : now;
  if (to === null) return { ok: false, message: `to: expected an ISO 8601 time (2026-12-07T14:00Z) or epoch milliseconds, got ${show(seen.get('to')!)}` };
  const from = seen.has('from') ? parseTime(seen.get('from')!) : to - DEFAULT_RANGE_MS;
  if (from === null) return { ok: false, message: `from: expected an ISO 8601 time (2026-12-07T14:00Z) or epoch milliseconds, got ${show(seen.get('from')!)}` };
  if (from >= to) return { ok: false, message: `from (${new Date(from).toISOString()}) must be before to (${new Date(to).toISOString()})` };
  const format = seen.get('format');
  if (format !== undefined && format !== 'json' && format !== 'csv') return { ok: false, message: `format: expected json or csv, got ${show(format)}` };
  const query: UsageQuery = { from, to };
  for (const k of ['feature', 'pool', 'server'] as const) {
    const v = seen.get(k);
    if (v === undefined) continue;
    if (v === '') return { ok: false, message: `${k}: empty (leave it out to see every ${k})` };
    query[k] = v;
  }
  return { ok: true, query, format: format ?? null };
}

function parseTime(s: string): number | null {
  if (/^\d{1,15}$/.test(s)) return Number(s);
  // ISO 8601 only (Date.parse alone accepts many locale formats); a time without a zone is read as UTC.
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,3})?)?(Z|[+-]\d{2}:?\d{2})?)?$/.exec(s);
  if (!m) return null;
  const zoned = m[4] !== undefined && m[7] === undefined ? `${s}Z` : m[4] === undefined ? `${s}T00:00Z` : s;
  const t = Date.parse(zoned.replace(' ', 'T'));
  return Number.isFinite(t) ? t : null;
}

function show(s: string): string {
  const j = JSON.stringify(s);
  return j.length > 60 ? `${j.slice(0, 60)}..."` : j;
}
