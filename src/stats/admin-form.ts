/**
 * The /stats page's admin forms on the server side (SPEC 10): `POST /stats/login` (the admin token for a session
 * cookie), `POST /stats/logout`, and `POST /stats/admin` (ready / drain / maint one server). Each checks, in this
 * order: the request comes from a page of this listener (Origin, else Referer: cross-origin or neither -> 403);
 * then the session cookie (none -> 401) and the form's CSRF token (missing or wrong -> 403). The change itself goes
 * through the same code as the JSON API. Answers are a 303 back to /stats, or one plain-text line.
 */
import type { IncomingMessage } from 'node:http';
import type { AdminToken } from './admin-token.ts';
import { AdminSessions, clearedCookie, csrfMatches, sessionCookie } from './admin-session.ts';
import type { ServerChange } from './admin-request.ts';
import type { AdminResult, AdminState } from './snapshot.ts';

export type AdminFormRoute = 'login' | 'logout' | 'admin';

export function adminFormRoute(segments: readonly string[]): AdminFormRoute | null {
  if (segments.length !== 2 || segments[0] !== 'stats') return null;
  const r = segments[1];
  return r === 'login' || r === 'logout' || r === 'admin' ? r : null;
}

export interface FormAnswer {
  status: number;
  body: string;
  headers: Record<string, string>;
}

export interface FormContext {
  token: AdminToken;
  sessions: AdminSessions;
  /** Applies a change exactly as `POST /api/pools/{pool}/servers/{server}` does (event, log line). */
  apply(pool: string, server: string, change: ServerChange): AdminResult;
}

const STATES: readonly AdminState[] = ['ready', 'drain', 'maint'];
const MAX_FIELD = 1024;

export function answerForm(route: AdminFormRoute, req: IncomingMessage, body: Buffer, ctx: FormContext): FormAnswer {
  const origin = originProblem(req);
  if (origin !== null) return line(403, `refused: ${origin}`);
  const fields = parseForm(body);
  if (fields === null) return line(400, 'form body: expected application/x-www-form-urlencoded fields');
  if (route === 'login') {
    // The token goes through the same check as the API's bearer header.
    if (!ctx.token.verify(`Bearer ${fields.get('token') ?? ''}`)) return line(401, 'wrong admin token');
    const { id } = ctx.sessions.create();
    return redirect({ 'Set-Cookie': sessionCookie(id) });
  }
  const session = ctx.sessions.fromCookie(req.headers.cookie);
  if (session === null) return line(401, 'not logged in (or the session expired): log in on /stats first');
  if (!csrfMatches(session, fields.get('csrf'))) return line(403, 'refused: missing or wrong CSRF token (reload /stats and try again)');
  if (route === 'logout') {
    ctx.sessions.end(req.headers.cookie);
    return redirect({ 'Set-Cookie': clearedCookie() });
  }
  const pool = fields.get('pool');
  const server = fields.get('server');
  const state = fields.get('state');
  if (!pool || !server) return line(400, 'form: pool and server are required');
  if (state === undefined || !STATES.includes(state as AdminState)) return line(400, `form: state must be one of ${STATES.join(', ')}`);
  const result = ctx.apply(pool, server, { state: state as AdminState });
  if (!result.ok) return line(result.error === 'invalid' ? 400 : 404, result.message);
  return redirect({}, `/stats#pool-${encodeURIComponent(pool)}`);
}

/**
 * Null when the request comes from this listener's own page: its Origin is `http://<Host>`, or without an Origin
 * its Referer is a page of that origin. A browser sends one of them on every form POST from our pages (they are
 * served with `Referrer-Policy: same-origin`); a request with neither is not from a browser form of ours.
 */
export function originProblem(req: IncomingMessage): string | null {
  const host = req.headers.host;
  if (!host) return 'no Host header';
  const own = `http://${host}`.toLowerCase();
  const origin = req.headers.origin;
  if (origin !== undefined) return origin.toLowerCase() === own ? null : `cross-origin request (Origin ${show(origin)}, expected ${show(own)})`;
  const referer = req.headers.referer;
  if (referer === undefined) return 'neither Origin nor Referer: a form of the stats page sends one';
  const r = referer.toLowerCase();
  return r === own || r.startsWith(`${own}/`) ? null : `cross-origin request (Referer ${show(referer)})`;
}

function parseForm(body: Buffer): Map<string, string> | null {
  const text = body.toString('utf8');
  const out = new Map<string, string>();
  for (const [k, v] of new URLSearchParams(text)) {
    if (k.length > MAX_FIELD || v.length > MAX_FIELD || out.has(k)) return null;
    out.set(k, v);
  }
  return out;
}

function line(status: number, message: string): FormAnswer {
  return { status, body: `${message}\n`, headers: { 'Content-Type': 'text/plain; charset=utf-8' } };
}

function redirect(headers: Record<string, string>, location = '/stats'): FormAnswer {
  return { status: 303, body: `see ${location}\n`, headers: { ...headers, Location: location, 'Content-Type': 'text/plain; charset=utf-8' } };
}

function show(s: string): string {
  const clean = s.replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(clean.length > 80 ? `${clean.slice(0, 80)}...` : clean);
}
