/**
 * The query of GET /api/sessions (SPEC 10): `?pool=&server=&client=&limit=`. Unknown parameters are ignored (as
 * the other read endpoints ignore their query); a bad limit or an over-long value is a 400 naming the parameter.
 */
import { DEFAULT_SESSION_LIMIT, MAX_SESSION_LIMIT, type SessionQuery } from '../proxy/session-list.ts';

/** Longest filter value accepted (pool and server names, an address). */
const MAX_VALUE = 256;

export type ParsedSessionQuery = { ok: true; query: SessionQuery } | { ok: false; message: string };

export function parseSessionQuery(url: string | undefined): ParsedSessionQuery {
  const q = url?.indexOf('?') ?? -1;
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(q === -1 ? '' : url!.slice(q + 1));
  } catch {
    return { ok: false, message: 'bad query string' };
  }
  const query: SessionQuery = { limit: DEFAULT_SESSION_LIMIT };
  for (const key of ['pool', 'server', 'client'] as const) {
    const v = params.get(key);
    if (v === null || v === '') continue;
    if (v.length > MAX_VALUE) return { ok: false, message: `${key}: longer than ${MAX_VALUE} characters` };
    query[key] = v;
  }
  const limit = params.get('limit');
  if (limit !== null) {
    if (!/^\d{1,6}$/.test(limit) || Number(limit) < 1 || Number(limit) > MAX_SESSION_LIMIT) {
      return { ok: false, message: `limit: a whole number from 1 to ${MAX_SESSION_LIMIT}` };
    }
    query.limit = Number(limit);
  }
  return { ok: true, query };
}
