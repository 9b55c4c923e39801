import net from 'node:net';
import test from 'ava';
import { waitFor } from '../helpers/wait.ts';
import { FakeStatsSource, getJson, largeSnapshot, request, scriptedSnapshot, startStats } from '../helpers/stats.ts';
import type { StatsSnapshot } from '../../src/stats/snapshot.ts';

test('/health answers 200 ok', async (t) => {
  const { base } = await startStats(t);
  const r = await request(base, '/health');
  t.is(r.status, 200);
  t.is(r.body, 'ok');
  t.is(r.headers['cache-control'], 'no-store');
});

test('/stats is HTML with the scripted values, security headers, and the refresh from stats.refresh', async (t) => {
  const { base } = await startStats(t, { refreshMs: 7_000 });
  const r = await request(base, '/stats');
  t.is(r.status, 200);
  t.regex(r.headers['content-type']!, /^text\/html; charset=utf-8/);
  t.regex(String(r.headers['content-security-policy']), /default-src 'none'/);
  t.true(r.body.includes('<meta http-equiv="refresh" content="7">'));
  t.false(/<script/i.test(r.body));
  for (const s of ['primary', 'secondary', 'tertiary', '123457', '9876543', 'UP 1/3', 'DOWN 1/2', 'DRAIN', 'MAINT', 'no check', 'paired and synced', 'MPPDYNA']) {
    t.true(r.body.includes(s), s);
  }
});

test('/stats.json is the snapshot, /api/events the event log', async (t) => {
  const { base, source } = await startStats(t);
  const { status, json } = await getJson<StatsSnapshot>(base, '/stats.json');
  t.is(status, 200);
  t.deepEqual(json, JSON.parse(JSON.stringify(source.snap)));
  t.is(json.pools[0]!.servers[0]!.stot, 123457);
  t.is(json.pools[0]!.servers[1]!.status, 'UP 1/3');
  t.deepEqual(json.pools[0]!.servers[0]!.features.map((f) => [f.name, f.inUse, f.issued]), [['LS-DYNA', 3, 50], ['MPPDYNA', 1000, 1024]]);
  const ev = await getJson<{ events: { type: string; reason: string }[] }>(base, '/api/events');
  t.is(ev.status, 200);
  t.deepEqual(ev.json.events.map((e) => e.type), ['down', 'failover', 'failback', 'reload', 'admin', 'up']);
});

test('/api/events serves at most the last 1000 events', async (t) => {
  const source = new FakeStatsSource(scriptedSnapshot(), Array.from({ length: 1500 }, (_, i) => ({ at: i, type: 'other' as const, reason: `e${i}` })));
  const { base } = await startStats(t, { source });
  const { json } = await getJson<{ events: { reason: string }[] }>(base, '/api/events');
  t.is(json.events.length, 1000);
  t.is(json.events[0]!.reason, 'e500');
  t.is(json.events[999]!.reason, 'e1499');
});

test('/stats.csv and /metrics answer with their types', async (t) => {
  const { base } = await startStats(t);
  const csv = await request(base, '/stats.csv');
  t.is(csv.status, 200);
  t.regex(csv.headers['content-type']!, /^text\/csv/);
  t.true(csv.body.startsWith('# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,'));
  t.true(csv.body.includes('\nlsdyna,primary,,,4,17,500,123457,9876543,1234567,'));
  const m = await request(base, '/metrics');
  t.is(m.status, 200);
  t.regex(m.headers['content-type']!, /^text\/plain; version=0\.0\.4/);
  t.true(m.body.includes('licproxy_server_sessions_total{pool="lsdyna",server="primary"} 123457\n'));
  t.true(m.body.includes('licproxy_license_feature_used{pool="lsdyna",server="primary",feature="LS-DYNA"} 3\n'));
});

test('/ready: 503 naming the pools without a usable server, 200 once every pool has one (text and JSON)', async (t) => {
  const { base, source } = await startStats(t);
  let r = await request(base, '/ready');
  t.is(r.status, 503);
  t.is(r.body, 'not ready: no usable server in pool(s) flex\n');
  r = await request(base, '/ready', { headers: { Accept: 'application/json' } });
  t.is(r.status, 503);
  t.deepEqual(JSON.parse(r.body), { ready: false, unavailablePools: ['flex'] });
  source.snap.pools[1]!.available = true;
  r = await request(base, '/ready');
  t.is(r.status, 200);
  t.regex(r.body, /^ready/);
});

test('read endpoints: GET and HEAD only; HEAD has headers and no body', async (t) => {
  const { base } = await startStats(t);
  for (const path of ['/stats', '/stats.json', '/stats.csv', '/metrics', '/health', '/ready', '/api/events']) {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const r = await request(base, path, { method });
      t.is(r.status, 405, `${method} ${path}`);
      t.is(r.headers.allow, 'GET, HEAD');
    }
    const h = await request(base, path, { method: 'HEAD' });
    t.true(h.status === 200 || (path === '/ready' && h.status === 503), path);
    t.is(h.body, '');
    t.true(Number(h.headers['content-length']) > 0, path);
  }
});

test('paths are matched strictly: no dot segments, no trailing slash, query strings ignored', async (t) => {
  const { base } = await startStats(t);
  t.is((await request(base, '/health?x=1&y=../../etc')).status, 200);
  t.is((await request(base, '/stats.json?pretty')).status, 200);
  for (const [path, status] of [
    ['/stats/', 404], ['/health/', 404], ['//health', 404], ['/api//events', 404], ['/STATS', 404], ['/stats.html', 404],
    ['/api/../health', 400], ['/./health', 400], ['/api/%2e%2e/health', 400], ['/api%2fevents', 404], ['/heal%00th', 400], ['/a%zz', 400],
    ['/api/pools', 404], ['/nope', 404],
  ] as const) {
    t.is((await request(base, path)).status, status, path);
  }
  const root = await request(base, '/');
  t.is(root.status, 302);
  t.is(root.headers.location, '/stats');
});

test('oversized headers get 431, a request target in absolute form 400, garbage 400', async (t) => {
  const { base } = await startStats(t, { limits: { maxHeaderSize: 4096 } });
  const big = await request(base, '/health', { headers: { 'X-Big': 'a'.repeat(8000) } }).catch((e: Error) => e);
  t.true(big instanceof Error || big.status === 431, 'header overflow refused');
  const raw = async (text: string): Promise<string> => {
    const sock = net.connect(base.port, base.host);
    t.teardown(() => sock.destroy());
    let got = '';
    sock.on('data', (d) => (got += d.toString()));
    sock.write(text);
    await waitFor(() => got.includes('\r\n\r\n'), { what: 'an answer' });
    return got;
  };
  t.regex(await raw('GET http://evil.example/health HTTP/1.1\r\nHost: x\r\n\r\n'), /^HTTP\/1\.1 400/);
  t.regex(await raw('HELLO\r\n\r\n'), /^HTTP\/1\.1 400/);
});

test('keep-alive: several requests on one connection; stop() closes idle keep-alive sockets at once', async (t) => {
  // Keep-alive timeout and stop grace far beyond the deadline below: only stop() closing idle sockets itself can
  // close this one in time. (Judged by cause, not by a "within N ms".)
  const { server, base } = await startStats(t, { stopGraceMs: 120_000, limits: { keepAliveTimeoutMs: 120_000 } });
  const sock = net.connect(base.port, base.host);
  t.teardown(() => sock.destroy());
  let got = '';
  sock.on('data', (d) => (got += d.toString()));
  let closed = false;
  sock.on('close', () => (closed = true));
  sock.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(() => got.split('HTTP/1.1 200').length === 3, { what: 'two answers' });
  const stopped = server.stop();
  await waitFor(() => closed, { timeout: 30_000, what: 'idle socket closed, before any timeout or grace could' });
  await stopped;
  t.is(got.split('HTTP/1.1 200').length, 3);
});

test('a snapshot of 1000 servers renders on every endpoint', async (t) => {
  const source = new FakeStatsSource(largeSnapshot(100, 10), []);
  const { base } = await startStats(t, { source });
  for (const path of ['/stats', '/stats.json', '/stats.csv', '/metrics']) {
    const r = await request(base, path);
    t.is(r.status, 200, path);
    t.true(r.body.includes('srv9'), path);
  }
});

test('an idle keep-alive connection is closed after keepAliveTimeout', async (t) => {
  const { base } = await startStats(t, { limits: { keepAliveTimeoutMs: 300 } });
  const sock = net.connect(base.port, base.host);
  t.teardown(() => sock.destroy());
  let got = '';
  let closedAt = 0;
  sock.on('data', (d) => (got += d.toString()));
  sock.on('close', () => (closedAt = Date.now()));
  const sentAt = Date.now(); // the server's keep-alive timer starts after it answered, so after this
  sock.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(() => got.includes('\r\n\r\nok'), { what: 'an answer' });
  t.regex(got, /Keep-Alive: timeout=0?\d*/i);
  // No stop(), no grace: only the keep-alive timeout closes it. The deadline only catches "never".
  await waitFor(() => closedAt > 0, { timeout: 30_000, what: 'server closes the idle connection' });
  t.true(closedAt - sentAt >= 299, `closed after ${closedAt - sentAt} ms, not before keepAliveTimeout`);
});
