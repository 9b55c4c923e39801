import test from 'ava';
import pino from 'pino';
import { Writable } from 'node:stream';
import { AdminToken } from '../../src/stats/admin-token.ts';
import { adminPost, request, startStats } from '../helpers/stats.ts';

const TOKEN = 's3cret-token-0123456789';
const PATH = '/api/pools/lsdyna/servers/primary';

function captureLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, dest), lines };
}

test('AdminToken: bearer scheme, exact token, whitespace in the file ignored', (t) => {
  const tok = new AdminToken(`${TOKEN}\n`);
  t.true(tok.verify(`Bearer ${TOKEN}`));
  t.true(tok.verify(`bearer ${TOKEN}`));
  t.false(tok.verify(undefined));
  t.false(tok.verify(TOKEN));
  t.false(tok.verify(`Basic ${TOKEN}`));
  t.false(tok.verify(`Bearer ${TOKEN}x`));
  t.false(tok.verify(`Bearer ${TOKEN.slice(0, -1)}`));
  t.false(tok.verify('Bearer '));
  t.throws(() => new AdminToken('  \n'));
});

test('admin not configured: every admin path answers 404, whatever the token', async (t) => {
  const { base, source } = await startStats(t);
  t.is((await adminPost(base, PATH, { state: 'drain' }, TOKEN)).status, 404);
  t.is((await adminPost(base, '/api/reload', {}, TOKEN)).status, 404);
  t.is((await request(base, PATH)).status, 404);
  t.deepEqual(source.calls, []);
});

test('missing or wrong token: 401 with WWW-Authenticate, nothing changed, refusal logged', async (t) => {
  const { logger, lines } = captureLogger();
  const { base, source } = await startStats(t, { adminToken: TOKEN, logger });
  for (const token of [undefined, 'wrong', `${TOKEN}x`, '']) {
    const r = await adminPost(base, PATH, { state: 'drain' }, token);
    t.is(r.status, 401, String(token));
    t.regex(r.headers['www-authenticate']!, /^Bearer/);
  }
  t.is((await adminPost(base, '/api/reload', {}, 'wrong')).status, 401);
  t.deepEqual(source.calls, []);
  t.is(source.reloads, 0);
  t.true(lines.some((l) => l.level === 40 && typeof l.remote === 'string' && (l.remote as string).startsWith('127.0.0.1:')));
});

test('admin endpoints are POST only (405 with Allow: POST)', async (t) => {
  const { base } = await startStats(t, { adminToken: TOKEN });
  for (const method of ['GET', 'PUT', 'DELETE', 'HEAD']) {
    const r = await request(base, PATH, { method, headers: { Authorization: `Bearer ${TOKEN}` } });
    t.is(r.status, 405, method);
    t.is(r.headers.allow, 'POST');
  }
});

test('bad bodies: 400 with a one-line message', async (t) => {
  const { base, source } = await startStats(t, { adminToken: TOKEN });
  const cases: [unknown, RegExp][] = [
    ['{not json', /not valid JSON/],
    ['[1,2]', /JSON object/],
    ['"drain"', /JSON object/],
    [{}, /state, weight and\/or bindings/],
    [{ state: 'down' }, /state: expected one of ready, drain, maint, got "down"/],
    [{ state: 1 }, /state: expected/],
    [{ weight: 257 }, /weight: expected an integer 0\.\.256, got 257/],
    [{ weight: -1 }, /weight: expected/],
    [{ weight: 1.5 }, /weight: expected/],
    [{ weight: '10' }, /weight: expected/],
    [{ state: 'drain', extra: true }, /unknown key "extra"/],
  ];
  for (const [body, re] of cases) {
    const r = await adminPost(base, PATH, body, TOKEN);
    t.is(r.status, 400, JSON.stringify(body));
    const msg = (JSON.parse(r.body) as { error: string }).error;
    t.regex(msg, re);
    t.false(msg.includes('\n'));
  }
  t.deepEqual(source.calls, []);
});

test('body over 64 KB: 413, declared or streamed', async (t) => {
  const { base, source } = await startStats(t, { adminToken: TOKEN });
  const big = JSON.stringify({ state: 'drain', pad: 'x'.repeat(70 * 1024) });
  const r = await adminPost(base, PATH, big, TOKEN);
  t.is(r.status, 413);
  // Chunked (no Content-Length): the limit is enforced while reading.
  const chunked = await request(base, PATH, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Transfer-Encoding': 'chunked' },
    body: Buffer.from(big),
  });
  t.is(chunked.status, 413);
  t.deepEqual(source.calls, []);
});

test('unknown pool or server: 404, hook told of the failed attempt', async (t) => {
  const { base, source } = await startStats(t, { adminToken: TOKEN });
  let r = await adminPost(base, '/api/pools/nope/servers/primary', { state: 'drain' }, TOKEN);
  t.is(r.status, 404);
  t.regex(JSON.parse(r.body).error, /no pool nope/);
  r = await adminPost(base, '/api/pools/lsdyna/servers/nope', { weight: 5 }, TOKEN);
  t.is(r.status, 404);
  t.deepEqual(source.calls, []);
  t.deepEqual(source.actions.map((a) => [a.pool, a.server, a.ok]), [['nope', 'primary', false], ['lsdyna', 'nope', false]]);
});

test('set state and weight: 200, hooks called with the right arguments, event hook and log line with the caller', async (t) => {
  const { logger, lines } = captureLogger();
  const { base, source } = await startStats(t, { adminToken: TOKEN, logger });
  let r = await adminPost(base, PATH, { state: 'drain' }, TOKEN);
  t.is(r.status, 200);
  t.deepEqual(JSON.parse(r.body), { ok: true, pool: 'lsdyna', server: 'primary', state: 'drain' });
  r = await adminPost(base, '/api/pools/lsdyna/servers/secondary', { state: 'maint', weight: 0 }, TOKEN);
  t.is(r.status, 200);
  r = await adminPost(base, '/api/pools/evil%22pool/servers/%3Cscript%3Ealert(1)%3C%2Fscript%3E', { weight: 256 }, TOKEN);
  t.is(r.status, 200, 'percent-encoded names are decoded');
  t.deepEqual(source.calls, [
    { op: 'state', pool: 'lsdyna', server: 'primary', value: 'drain' },
    { op: 'state', pool: 'lsdyna', server: 'secondary', value: 'maint' },
    { op: 'weight', pool: 'lsdyna', server: 'secondary', value: 0 },
    { op: 'weight', pool: 'evil"pool', server: '<script>alert(1)</script>', value: 256 },
  ]);
  t.is(source.actions.length, 3);
  t.like(source.actions[1], { action: 'set-server', pool: 'lsdyna', server: 'secondary', state: 'maint', weight: 0, ok: true });
  t.regex(source.actions[0]!.remote, /^127\.0\.0\.1:\d+$/);
  const adminLines = lines.filter((l) => typeof l.msg === 'string' && (l.msg as string).startsWith('admin: set server'));
  t.is(adminLines.length, 3);
  t.regex(String(adminLines[0]!.remote), /^127\.0\.0\.1:\d+$/);
  // The change is visible in the next snapshot.
  const json = JSON.parse((await request(base, '/stats.json')).body);
  t.is(json.pools[0].servers[0].adminState, 'drain');
});

test('reload: 200 when applied, 400 with the error when refused; both recorded', async (t) => {
  const { base, source } = await startStats(t, { adminToken: TOKEN });
  let r = await adminPost(base, '/api/reload', '', TOKEN);
  t.is(r.status, 200);
  t.deepEqual(JSON.parse(r.body), { ok: true });
  source.reloadResult = { ok: false, error: 'licproxy.yaml:3:5 pools.x.balance: expected roundrobin, leastconn, source, first' };
  r = await adminPost(base, '/api/reload', '', TOKEN);
  t.is(r.status, 400);
  t.deepEqual(JSON.parse(r.body), { ok: false, error: source.reloadResult.error });
  t.is(source.reloads, 2);
  t.deepEqual(source.actions.map((a) => [a.action, a.ok]), [['reload', true], ['reload', false]]);
});

test('bindings: "clear" drops a server\'s affinity bindings; anything else is a 400', async (t) => {
  const { url, source } = await startStats(t, { adminToken: TOKEN });
  const ok = await adminPost(url, '/api/pools/lsdyna/servers/primary', { bindings: 'clear' }, TOKEN);
  t.is(ok.status, 200, ok.body);
  t.deepEqual(source.calls.at(-1), { op: 'bindings', pool: 'lsdyna', server: 'primary', value: 'clear' });
  const bad = await adminPost(url, '/api/pools/lsdyna/servers/primary', { bindings: 'drop' }, TOKEN);
  t.is(bad.status, 400);
  t.regex((JSON.parse(bad.body) as { error: string }).error, /bindings: expected "clear"/);
});
