/**
 * Admin from the /stats page (SPEC 10, HAProxy's `stats admin`): without stats.admin nothing shows and the form
 * routes do not exist; with it, a login form exchanges the token for an HttpOnly, SameSite=Strict session cookie;
 * each form carries the session's CSRF token; wrong token 401, missing or wrong CSRF 403, cross-origin 403, and a
 * drain through the form changes the server as the JSON API would (same event, same log line).
 */
import test, { type ExecutionContext } from 'ava';
import { request, startStats, type HttpResult, type StartedStats } from '../helpers/stats.ts';

const TOKEN = 'page-admin-token-0123456789';

function form(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString();
}

/** A form POST from our page (Origin: the listener's); `Origin: ''` in `headers` sends none. */
function post(s: StartedStats, path: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<HttpResult> {
  const h: Record<string, string> = { 'Content-Type': 'application/x-www-form-urlencoded', Origin: s.url, ...headers };
  if (h.Origin === '') delete h.Origin;
  return request(s.base, path, { method: 'POST', headers: h, body: form(fields) });
}

/** Logs in; returns the cookie to send and the CSRF token the page carries for it. */
async function login(s: StartedStats): Promise<{ cookie: string; csrf: string }> {
  const r = await post(s, '/stats/login', { token: TOKEN });
  if (r.status !== 303) throw new Error(`login: ${r.status} ${r.body}`);
  const cookie = (r.headers['set-cookie']![0] ?? '').split(';')[0]!;
  const page = await request(s.base, '/stats', { headers: { Cookie: cookie } });
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)?.[1];
  if (!csrf) throw new Error('no CSRF token on the page');
  return { cookie, csrf };
}

async function started(t: ExecutionContext): Promise<StartedStats> {
  return startStats(t, { adminToken: TOKEN });
}

test('without stats.admin: no form on /stats, and the form routes answer 404', async (t) => {
  const s = await startStats(t);
  const page = await request(s.base, '/stats');
  t.false(page.body.includes('<form'));
  t.regex(page.headers['content-security-policy'] as string, /form-action 'none'/);
  for (const path of ['/stats/login', '/stats/logout', '/stats/admin']) t.is((await post(s, path, { token: TOKEN })).status, 404, path);
  t.deepEqual(s.source.calls, []);
});

test('with stats.admin: a login form, no buttons, the token never in the page; the page may post to itself', async (t) => {
  const s = await started(t);
  const page = await request(s.base, '/stats');
  t.regex(page.body, /<form method="post" action="\/stats\/login"/);
  t.false(page.body.includes('action="/stats/admin"'));
  t.false(page.body.includes(TOKEN));
  t.false(/<script/i.test(page.body));
  t.regex(page.headers['content-security-policy'] as string, /form-action 'self'/);
  t.is(page.headers['referrer-policy'], 'same-origin', 'forms send their Origin (no-referrer would make it "null")');
  t.is((await request(s.base, '/stats/login')).status, 405);
});

test('login: wrong token 401 without a cookie; cross-origin or neither Origin nor Referer 403; right token 303 with an HttpOnly SameSite=Strict cookie', async (t) => {
  const s = await started(t);
  for (const token of ['', 'wrong', `${TOKEN}x`, TOKEN.slice(1)]) {
    const r = await post(s, '/stats/login', { token });
    t.is(r.status, 401, token);
    t.is(r.headers['set-cookie'], undefined);
    t.is(r.body.trim().split('\n').length, 1);
  }
  t.is((await post(s, '/stats/login', { token: TOKEN }, { Origin: 'http://evil.example' })).status, 403);
  t.is((await post(s, '/stats/login', { token: TOKEN }, { Origin: 'null' })).status, 403);
  const bare = await request(s.base, '/stats/login', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: form({ token: TOKEN }) });
  t.is(bare.status, 403, 'neither Origin nor Referer');
  const r = await post(s, '/stats/login', { token: TOKEN });
  t.is(r.status, 303);
  t.is(r.headers.location, '/stats');
  const cookie = r.headers['set-cookie']![0]!;
  t.regex(cookie, /^lpx_admin=[A-Za-z0-9_-]{40,};/);
  t.regex(cookie, /; HttpOnly/);
  t.regex(cookie, /; SameSite=Strict/);
  t.false(cookie.includes(TOKEN));
});

test('logged in: per server ready / drain / maint buttons carrying the CSRF token; the current state disabled', async (t) => {
  const s = await started(t);
  const { cookie, csrf } = await login(s);
  const page = (await request(s.base, '/stats', { headers: { Cookie: cookie } })).body;
  const forms = page.match(/<form method="post" action="\/stats\/admin"/g) ?? [];
  const servers = s.source.snap.pools.reduce((a, p) => a + p.servers.length, 0);
  t.is(forms.length, servers, 'one form per server');
  t.is(page.match(new RegExp(`name="csrf" value="${csrf}"`, 'g'))?.length, servers + 1, 'every form (and log out) carries the token');
  t.regex(page, /name="server" value="drained">.*?value="drain" disabled>/);
  t.false(page.includes('<script'), 'the hostile server name stays text');
  t.false(page.includes(TOKEN));
  // Another viewer (no cookie) gets the login form, not this session's token.
  t.false((await request(s.base, '/stats')).body.includes(csrf));
});

test('the drain form: no session 401, missing or wrong CSRF 403, cross-origin 403; then a drain applied as the API applies it', async (t) => {
  const s = await started(t);
  const { cookie, csrf } = await login(s);
  const drain = { pool: 'lsdyna', server: 'primary', state: 'drain' };
  t.is((await post(s, '/stats/admin', { ...drain, csrf })).status, 401, 'no session cookie');
  t.is((await post(s, '/stats/admin', { ...drain, csrf }, { Cookie: 'lpx_admin=forged' })).status, 401, 'unknown session');
  t.is((await post(s, '/stats/admin', drain, { Cookie: cookie })).status, 403, 'missing CSRF');
  t.is((await post(s, '/stats/admin', { ...drain, csrf: `${csrf.slice(0, -1)}${csrf.endsWith('A') ? 'B' : 'A'}` }, { Cookie: cookie })).status, 403, 'wrong CSRF');
  t.is((await post(s, '/stats/admin', { ...drain, csrf }, { Cookie: cookie, Origin: 'http://attacker.example:8404' })).status, 403, 'cross-origin');
  t.is((await post(s, '/stats/admin', { ...drain, csrf }, { Cookie: cookie, Origin: '', Referer: 'http://attacker.example/stats' })).status, 403, 'cross-origin Referer');
  t.deepEqual(s.source.calls, [], 'nothing applied by a refused form');
  const ok = await post(s, '/stats/admin', { ...drain, csrf }, { Cookie: cookie });
  t.is(ok.status, 303, ok.body);
  t.is(ok.headers.location, '/stats#pool-lsdyna');
  t.deepEqual(s.source.calls, [{ op: 'state', pool: 'lsdyna', server: 'primary', value: 'drain' }]);
  t.like(s.source.actions.at(-1), { action: 'set-server', pool: 'lsdyna', server: 'primary', state: 'drain', ok: true });
  // A Referer of our own page is enough where a client sends no Origin.
  const viaReferer = await request(s.base, '/stats/admin', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: cookie, Referer: `${s.url}/stats` },
    body: form({ pool: 'lsdyna', server: 'primary', state: 'ready', csrf }),
  });
  t.is(viaReferer.status, 303);
  t.is(s.source.snap.pools[0]!.servers[0]!.adminState, 'ready');
  t.is((await post(s, '/stats/admin', { pool: 'lsdyna', server: 'nope', state: 'maint', csrf }, { Cookie: cookie })).status, 404);
  t.is((await post(s, '/stats/admin', { pool: 'lsdyna', server: 'primary', state: 'off', csrf }, { Cookie: cookie })).status, 400);
});

test('log out ends the session; a new admin token ends every session', async (t) => {
  const s = await started(t);
  const a = await login(s);
  t.is((await post(s, '/stats/logout', { csrf: 'wrong' }, { Cookie: a.cookie })).status, 403);
  const out = await post(s, '/stats/logout', { csrf: a.csrf }, { Cookie: a.cookie });
  t.is(out.status, 303);
  t.regex(out.headers['set-cookie']![0]!, /^lpx_admin=; .*Max-Age=0/);
  t.is((await post(s, '/stats/admin', { pool: 'lsdyna', server: 'primary', state: 'drain', csrf: a.csrf }, { Cookie: a.cookie })).status, 401);
  const b = await login(s);
  s.server.configure({ adminToken: 'another-admin-token-9876543210' });
  t.is((await post(s, '/stats/admin', { pool: 'lsdyna', server: 'primary', state: 'drain', csrf: b.csrf }, { Cookie: b.cookie })).status, 401);
  t.deepEqual(s.source.calls, []);
});
