/**
 * Admin from the /stats page against a real balancer (ProxyApp + StatsService) and real licd servers: log in with
 * the token from stats.admin.token_file, drain a server with the page's form, and the runtime's server is DRAIN
 * (new clients go elsewhere), the event log says so; ready brings it back.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { StatsService } from '../../src/cli/services/stats-service.ts';
import { silentLogger } from '../../src/common/logger.ts';
import { parseProxyConfig } from '../../src/config/proxy-schema.ts';
import { createMonitorFactory } from '../../src/health/health-monitor.ts';
import { ProxyApp } from '../../src/proxy/app.ts';
import { startLicd } from '../helpers/licd.ts';
import { freeFrontendPorts } from '../helpers/ports.ts';
import { request } from '../helpers/stats.ts';
import { waitFor } from '../helpers/wait.ts';

const TOKEN = 'e2e-page-admin-token-0123456789';

test('a drain through the /stats page form drains the real server; ready undoes it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lpx-admin-page-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'admin.token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  const a = await startLicd({ name: 'a' });
  const b = await startLicd({ name: 'b' });
  t.teardown(() => a.stop());
  t.teardown(() => b.stop());
  const config = parseProxyConfig(join(dir, 'licproxy.yaml'), await freeFrontendPorts(`stats:
  listen: 127.0.0.1:0
  admin: { token_file: admin.token }
pools:
  lic:
    check: { type: tcp, interval: 100ms }
    servers:
      - { name: a, address: 127.0.0.1:${a.ports.license} }
      - { name: b, address: 127.0.0.1:${b.ports.license} }
frontends:
  - { name: lic, listen: 127.0.0.1:0, pool: lic }
`));
  const stats = new StatsService({ log: silentLogger });
  const app = await ProxyApp.start({ config, log: silentLogger, monitorFactory: createMonitorFactory(), services: [stats] });
  t.teardown(() => app.stop(0));
  const server = (name: string) => app.runtime.snapshot().pools[0]!.servers.find((s) => s.name === name)!;
  await waitFor(() => server('a').status === 'UP' && server('b').status === 'UP', { what: 'both UP' });
  const base = stats.address!;
  const origin = `http://127.0.0.1:${base.port}`;
  const post = (path: string, fields: Record<string, string>, cookie?: string) => request(base, path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: origin, ...(cookie ? { Cookie: cookie } : {}) },
    body: new URLSearchParams(fields).toString(),
  });

  t.is((await post('/stats/login', { token: 'not-the-token-at-all' })).status, 401);
  const login = await post('/stats/login', { token: TOKEN });
  t.is(login.status, 303);
  const cookie = login.headers['set-cookie']![0]!.split(';')[0]!;
  const page = await request(base, '/stats', { headers: { Cookie: cookie } });
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!;
  t.is((await post('/stats/admin', { pool: 'lic', server: 'a', state: 'drain' }, cookie)).status, 403, 'no CSRF');
  t.is(server('a').adminState, 'ready');

  const drained = await post('/stats/admin', { pool: 'lic', server: 'a', state: 'drain', csrf }, cookie);
  t.is(drained.status, 303, drained.body);
  t.is(server('a').adminState, 'drain');
  t.is(server('a').status, 'DRAIN');
  t.true(app.runtime.eventList().some((e) => e.server === 'a' && e.to === 'DRAIN'), 'the event log has the drain');
  t.regex((await request(base, '/stats', { headers: { Cookie: cookie } })).body, /name="server" value="a">.*?value="drain" disabled>/);

  t.is((await post('/stats/admin', { pool: 'lic', server: 'a', state: 'ready', csrf }, cookie)).status, 303);
  t.is(server('a').adminState, 'ready');
});
