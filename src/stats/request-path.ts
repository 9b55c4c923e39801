/**
 * Strict request-target parsing for the stats listener: origin-form only, query string ignored, each segment
 * percent-decoded once (so a pool or server name may hold any character, `%2F` included). Dot segments (plain or
 * encoded), empty segments (`//`, a trailing `/`) and control characters are refused rather than normalised, so a
 * path means exactly one thing. Callers route on the segment list, never on a re-joined string.
 */
export type ParsedPath = { ok: true; segments: string[] } | { ok: false; status: 400 | 404; message: string };

export function parsePath(url: string | undefined): ParsedPath {
  if (!url || url[0] !== '/') return { ok: false, status: 400, message: 'request target must be an absolute path' };
  const q = url.indexOf('?');
  const raw = q === -1 ? url : url.slice(0, q);
  if (raw === '/') return { ok: true, segments: [] };
  const parts = raw.slice(1).split('/');
  const segments: string[] = [];
  for (const part of parts) {
    if (part === '') return { ok: false, status: 404, message: 'not found' };
    let seg: string;
    try {
      seg = decodeURIComponent(part);
    } catch {
      return { ok: false, status: 400, message: 'bad percent-encoding in path' };
    }
    if (seg === '.' || seg === '..') return { ok: false, status: 400, message: 'dot segments are not allowed in paths' };
    if (/[\u0000-\u001f\u007f]/.test(seg)) return { ok: false, status: 400, message: 'control character in path' };
    segments.push(seg);
  }
  return { ok: true, segments };
}
