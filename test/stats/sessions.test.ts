/**
 * Live sessions (SPEC 10, GET /api/sessions and the /stats section) through a real balancer in front of real licd
 * servers: every open connection is listed with its frontend, pool, server, client and bytes; licd connections
 * with the HELLO user, the handle's public id (never the full handle) and the features asked for; filters and the
 * limit apply; a hostile user name is escaped on the page.
 */
import test from 'ava';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/common/logger.ts';
import { parseProxyConfig } from '../../src/config/proxy-schema.ts';
import { createMonitorFactory } from '../../src/health/health-monitor.ts';
import { ProxyApp } from '../../src/proxy/app.ts';
import { StatsService } from '../../src/cli/services/stats-service.ts';
import type { SessionInfo } from '../../src/proxy/session-list.ts';
import { LineClient, startLicd, type InProcessLicd } from '../helpers/licd.ts';
import { freeFrontendPorts } from '../helpers/ports.ts';
import { getJson, request } from '../helpers/stats.ts';
import { waitFor } from '../helpers/wait.ts';

interface SessionsJson {
  total: number;
  returned: number;
  limit: number;
  sessions: SessionInfo[];
}

const HOSTILE = '<script>alert("x")</script>&';

async function balancer(t: import('ava').ExecutionContext): Promise<{ app: ProxyApp; base: { host: string; port: number }; licds: Record<string, InProcessLicd> }> {
  const dir = mkdtempSync(join(tmpdir(), 'lpx-sessions-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const licds: Record<string, InProcessLicd> = {};
  for (const name of ['alpha', 'beta']) {
    licds[name] = await startLicd({ name });
    t.teardown(() => licds[name]!.stop());
  }
  const config = parseProxyConfig(
    join(dir, 'licproxy.yaml'),
    await freeFrontendPorts(`stats:
  listen: 127.0.0.1:0
pools:
  lic:
    protocol: licd
    balance: first
    check: { type: tcp, interval: 100ms, fast_interval: 50ms, down_interval: 100ms, fall: 2 }
    servers:
      - { name: alpha, address: 127.0.0.1:${licds.alpha!.ports.license} }
  plain:
    check: { type: tcp, interval: 100ms, fast_interval: 50ms, down_interval: 100ms, fall: 2 }
    servers:
      - { name: beta, address: 127.0.0.1:${licds.beta!.ports.license} }
frontends:
  - { name: lic, listen: 127.0.0.1:0, pool: lic }
  - { name: plain, listen: 127.0.0.1:0, pool: plain }
`),
  );
  const stats = new StatsService({ log: silentLogger });
  const app = await ProxyApp.start({ config, log: silentLogger, monitorFactory: createMonitorFactory(), services: [stats] });
  t.teardown(() => app.stop(0));
  await waitFor(() => app.runtime.snapshot().pools.every((p) => p.servers.every((s) => s.status === 'UP')), { what: 'all UP' });
  return { app, base: stats.address!, licds };
}

async function licdSession(port: number, user: string): Promise<{ client: LineClient; handle: string }> {
  const client = await LineClient.connect(port);
  const hello = await client.request(`HELLO user=${user} host=ws1`);
  if (!hello.startsWith('OK')) throw new Error(`HELLO: ${hello}`);
  const granted = await client.request('CHECKOUT LS-DYNA');
  const handle = /handle=(\S+)/.exec(granted)?.[1];
  if (handle === undefined) throw new Error(`CHECKOUT: ${granted}`);
  return { client, handle };
}

async function sessions(base: { host: string; port: number }, query = ''): Promise<SessionsJson> {
  const r = await getJson<SessionsJson>(base, `/api/sessions${query}`);
  if (r.status !== 200) throw new Error(`status ${r.status}`);
  return r.json;
}

test('every open connection is listed, licd ones with user, handle id and features; filters and limit apply', async (t) => {
  const { app, base } = await balancer(t);
  const lic = app.runtime.port('lic');
  const a = await licdSession(lic, 'alice');
  t.teardown(() => a.client.destroy());
  const b = await licdSession(lic, HOSTILE);
  t.teardown(() => b.client.destroy());
  const raw: Socket = connect({ host: '127.0.0.1', port: app.runtime.port('plain') });
  t.teardown(() => raw.destroy());
  await once(raw, 'connect');
  raw.write('STATUS json\n');
  await once(raw, 'data');

  const all = await waitFor(async () => {
    const j = await sessions(base);
    return j.total === 3 && j.sessions.every((s) => s.state === 'open') ? j : undefined;
  }, { what: 'three open sessions' });
  t.is(all.returned, 3);
  t.is(all.limit, 1000);
  const byUser = (u: string) => all.sessions.find((s) => s.user === u);
  const alice = byUser('alice')!;
  t.truthy(alice, JSON.stringify(all.sessions));
  t.is(alice.frontend, 'lic');
  t.is(alice.pool, 'lic');
  t.is(alice.server, 'alpha');
  t.is(alice.client, `127.0.0.1:${a.client.socket.localPort}`);
  t.deepEqual(alice.features, ['LS-DYNA']);
  t.true(alice.bytesIn > 0 && alice.bytesOut > 0, 'bytes both ways');
  t.true(alice.since <= Date.now() && alice.since > Date.now() - 60_000);
  // The public id only: `<server>.<16 hex>`, the prefix of the full handle; the secret after it never appears.
  t.is(alice.handle, a.handle.slice(0, 'alpha.'.length + 16));
  t.regex(alice.handle!, /^alpha\.[0-9a-f]{16}$/);
  const plain = all.sessions.find((s) => s.pool === 'plain')!;
  t.is(plain.server, 'beta');
  t.is(plain.user, undefined, 'a tcp pool has no licd fields');
  t.true(plain.bytesIn > 0 && plain.bytesOut > 0);
  t.is(byUser(HOSTILE)?.handle, b.handle.slice(0, 'alpha.'.length + 16));

  // Filters.
  t.is((await sessions(base, '?pool=lic')).total, 2);
  t.is((await sessions(base, '?pool=plain')).total, 1);
  t.is((await sessions(base, '?server=beta')).sessions[0]?.pool, 'plain');
  t.is((await sessions(base, '?server=nope')).total, 0);
  t.is((await sessions(base, '?client=127.0.0.1')).total, 3);
  t.is((await sessions(base, '?client=10.9.9.9')).total, 0);
  const one = await sessions(base, `?client=127.0.0.1:${a.client.socket.localPort}`);
  t.is(one.total, 1);
  t.is(one.sessions[0]?.user, 'alice');
  const limited = await sessions(base, '?limit=2');
  t.is(limited.total, 3);
  t.is(limited.returned, 2);
  t.deepEqual(limited.sessions.map((s) => s.since), [...limited.sessions.map((s) => s.since)].sort((x, y) => x - y), 'oldest first');
  t.is((await request(base, '/api/sessions?limit=0')).status, 400);
  t.is((await request(base, '/api/sessions?limit=abc')).status, 400);
  t.is((await request(base, '/api/sessions', { method: 'POST' })).status, 405);

  // Nowhere a full handle or its secret: the API, the page.
  const page = (await request(base, '/stats')).body;
  const api = (await request(base, '/api/sessions')).body;
  for (const h of [a.handle, b.handle]) {
    const secret = h.slice(-32);
    t.false(api.includes(secret), 'API leaks no handle secret');
    t.false(page.includes(secret), 'page leaks no handle secret');
  }
  t.true(page.includes('Live sessions'));
  t.true(page.includes('href="/api/sessions"'));
  t.true(page.includes(a.handle.slice(0, 22)));
  // The hostile user name is text on the page, never markup.
  t.false(page.includes('<script>'), 'no raw script tag');
  t.true(page.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;'));

  // A closed connection leaves the list.
  a.client.destroy();
  await waitFor(async () => (await sessions(base)).total === 2, { what: 'alice gone' });
});
