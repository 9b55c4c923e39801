/**
 * The stats endpoint of a real balancer after a scripted scenario: connections through the proxy, a server
 * killed, a server drained, another put in maintenance. Every countable value must match what happened.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/common/logger.ts';
import { parseProxyConfig } from '../../src/config/proxy-schema.ts';
import { createMonitorFactory } from '../../src/health/health-monitor.ts';
import { ProxyApp } from '../../src/proxy/app.ts';
import { StatsService } from '../../src/cli/services/stats-service.ts';
import { startLicd, type InProcessLicd } from '../helpers/licd.ts';
import { freeFrontendPorts } from '../helpers/ports.ts';
import { adminPost, getJson, request } from '../helpers/stats.ts';
import { waitFor } from '../helpers/wait.ts';
import type { StatsSnapshot, StatsEvent } from '../../src/stats/snapshot.ts';

const TOKEN = 'e2e-admin-token-0123456789';
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

/** A temporary folder holding the admin token file (mode 600, as licproxy requires), removed at teardown. */
function tokenDir(t: import('ava').ExecutionContext): { dir: string; tokenFile: string } {
  const dir = mkdtempSync(join(tmpdir(), 'lpx-e2e-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'admin.token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  return { dir, tokenFile };
}

interface Scenario {
  app: ProxyApp;
  base: { host: string; port: number };
  licds: Record<string, InProcessLicd>;
  port: number;
}

async function scenario(t: import('ava').ExecutionContext): Promise<Scenario> {
  const { dir, tokenFile } = tokenDir(t);
  const licds: Record<string, InProcessLicd> = {};
  for (const name of ['alpha', 'beta', 'gamma']) {
    licds[name] = await startLicd({ name });
    t.teardown(() => licds[name]!.stop());
  }
  const config = parseProxyConfig(
    join(dir, 'licproxy.yaml'),
    await freeFrontendPorts(`stats:
  listen: 127.0.0.1:0
  admin: { token_file: ${tokenFile} }
pools:
  lic:
    balance: roundrobin
    check: { type: tcp, interval: 100ms, fast_interval: 50ms, down_interval: 100ms, fall: 2 }
    servers:
${Object.entries(licds).map(([n, l]) => `      - { name: ${n}, address: 127.0.0.1:${l.ports.license}, maint_kill: true }`).join('\n')}
frontends:
  - { name: lic, listen: 127.0.0.1:0, pool: lic }
`),
  );
  const stats = new StatsService({ log: silentLogger });
  const app = await ProxyApp.start({ config, log: silentLogger, monitorFactory: createMonitorFactory(), services: [stats] });
  t.teardown(() => app.stop(0));
  await waitFor(() => app.runtime.snapshot().pools[0]!.servers.every((s) => s.status === 'UP'), { what: 'all UP' });
  return { app, base: stats.address!, licds, port: app.runtime.port('lic') };
}

/** One short exchange through the proxy: HEARTBEAT -> OK, then close; resolves when the proxy saw it end. */
async function heartbeat(port: number): Promise<void> {
  const s = connect(port, '127.0.0.1');
  await once(s, 'connect');
  s.write('HEARTBEAT\n');
  await once(s, 'data');
  s.end();
  await once(s, 'close');
}

async function hold(t: import('ava').ExecutionContext, port: number): Promise<Socket> {
  const s = connect(port, '127.0.0.1');
  t.teardown(() => s.destroy());
  await once(s, 'connect');
  s.write('HEARTBEAT\n');
  await once(s, 'data');
  return s;
}

const snap = async (b: Scenario['base']) => (await getJson<StatsSnapshot>(b, '/stats.json')).json;
/** The stats pages are re-rendered at most every few milliseconds (a bounded cost): wait for what must show. */
const snapWhen = (b: Scenario['base'], ok: (s: StatsSnapshot) => boolean, what: string) =>
  waitFor(async () => {
    const s = await snap(b);
    return ok(s) ? s : undefined;
  }, { what });
const server = (s: StatsSnapshot, name: string) => s.pools[0]!.servers.find((x) => x.name === name)!;

test.serial('stats, CSV, metrics, events and ready follow a scripted scenario exactly', async (t) => {
  const { app, base, licds, port } = await scenario(t);

  // 6 short connections, round robin over 3 servers: 2 each, 10 bytes in and 3 out each.
  for (let i = 0; i < 6; i++) await heartbeat(port);
  await waitFor(async () => (await snap(base)).pools[0]!.totals.stot === 6, { what: '6 sessions counted' });
  let s = await snap(base);
  for (const name of ['alpha', 'beta', 'gamma']) {
    t.is(server(s, name).stot, 2, `${name} total sessions`);
    t.is(server(s, name).bytesIn, 20, `${name} bytes in`);
    t.is(server(s, name).bytesOut, 6, `${name} bytes out`);
    t.is(server(s, name).scur, 0);
  }
  t.is(s.frontends[0]!.stot, 6);
  t.is(s.frontends[0]!.bytesIn, 60);

  // Kill gamma: DOWN everywhere, an event, ready stays 200 (two servers left).
  await licds.gamma!.stop();
  await waitFor(async () => server(await snap(base), 'gamma').status === 'DOWN', { what: 'gamma DOWN' });
  const events = (await getJson<{ events: StatsEvent[] }>(base, '/api/events')).json.events;
  t.true(events.some((e) => e.type === 'down' && e.server === 'gamma'));
  t.is((await request(base, '/ready')).status, 200);

  // Drain alpha with a connection open on it: the connection stays, no new client goes there.
  s = await snap(base);
  const before = { alpha: server(s, 'alpha').stot, beta: server(s, 'beta').stot };
  const held: Socket[] = [];
  for (let i = 0; i < 2; i++) held.push(await hold(t, port));
  s = await snapWhen(base, (x) => server(x, 'alpha').scur + server(x, 'beta').scur === 2, 'two held connections');
  const onAlpha = server(s, 'alpha').scur;
  t.is((await adminPost(base, '/api/pools/lic/servers/alpha', { state: 'drain' }, TOKEN)).status, 200);
  for (let i = 0; i < 4; i++) await heartbeat(port);
  s = await snapWhen(base, (x) => x.pools[0]!.totals.stot === before.alpha + before.beta + server(x, 'gamma').stot + 6, 'the 4 new sessions');
  t.is(server(s, 'alpha').status, 'DRAIN');
  t.is(server(s, 'alpha').stot, before.alpha + onAlpha, 'no new client on the drained server');
  t.is(server(s, 'alpha').scur, onAlpha, 'its connection is still open');
  t.is(server(s, 'beta').stot, before.beta + (2 - onAlpha) + 4);
  for (const h of held) t.false(h.destroyed);

  // CSV and metrics say the same.
  const csv = (await request(base, '/stats.csv')).body.trim().split('\n');
  const header = csv[0]!.replace(/^# /, '').split(',');
  const row = (name: string) => Object.fromEntries(csv.find((l) => l.startsWith(`lic,${name},`))!.split(',').map((v, i) => [header[i], v]));
  t.is(row('alpha').status, 'DRAIN');
  t.is(row('gamma').status, 'DOWN');
  t.is(Number(row('beta').stot), server(s, 'beta').stot);
  const metrics = (await request(base, '/metrics')).body;
  t.regex(metrics, /licproxy_server_up\{pool="lic",server="gamma"\} 0/);
  t.regex(metrics, new RegExp(`licproxy_server_sessions_total\\{pool="lic",server="beta"\\} ${server(s, 'beta').stot}\\b`));
  t.regex(metrics, /licproxy_frontend_connections_total\{frontend="lic",pool="lic"\} 12/);
  const html = (await request(base, '/stats')).body;
  for (const word of ['alpha', 'beta', 'gamma', 'DRAIN', 'DOWN']) t.true(html.includes(word), word);

  // Maintenance with maint_kill closes the server's connections.
  const target = onAlpha > 0 ? 'alpha' : 'beta';
  const closed = held.map((h) => new Promise<void>((r) => h.once('close', () => r())));
  t.is((await adminPost(base, `/api/pools/lic/servers/${target}`, { state: 'maint' }, TOKEN)).status, 200);
  await waitFor(async () => server(await snap(base), target).scur === 0, { what: 'maint closed the connections' });
  await Promise.race([Promise.any(closed), new Promise((_, j) => setTimeout(() => j(new Error('no connection closed')), 5000))]);

  // Every server unusable: /ready says which pool.
  await adminPost(base, `/api/pools/lic/servers/${target === 'alpha' ? 'beta' : 'alpha'}`, { state: 'maint' }, TOKEN);
  const ready = await request(base, '/ready');
  t.is(ready.status, 503);
  t.regex(ready.body, /lic/);
  t.is((await adminPost(base, '/api/pools/lic/servers/alpha', { state: 'drain' }, 'wrong-token')).status, 401);
  t.truthy(app);
});

const browser = CHROMIUM ? test.serial : test.skip;
browser('headless Chromium renders the live stats page of a running balancer', async (t) => {
  const { base, port } = await scenario(t);
  await heartbeat(port);
  const profile = mkdtempSync(join(tmpdir(), 'lpx-chromium-'));
  t.teardown(() => rmSync(profile, { recursive: true, force: true }));
  const dom = await new Promise<string>((resolve, reject) =>
    execFile(
      CHROMIUM!,
      ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--no-first-run', '--disable-dev-shm-usage', `--user-data-dir=${profile}`, '--dump-dom', `http://127.0.0.1:${base.port}/stats`],
      { timeout: 60_000, maxBuffer: 16 << 20 },
      (err, stdout) => (err ? reject(err) : resolve(stdout)),
    ),
  );
  const text = dom.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ');
  for (const s of ['Pool lic', 'alpha', 'beta', 'gamma', 'UP']) t.true(text.includes(s), s);
});

test.serial('drain keeps a bound client; clearing the server\'s bindings through the admin API moves it', async (t) => {
  const { dir, tokenFile } = tokenDir(t);
  const a = await startLicd({ name: 'a' });
  const b = await startLicd({ name: 'b' });
  t.teardown(() => a.stop());
  t.teardown(() => b.stop());
  const config = parseProxyConfig(
    join(dir, 'licproxy.yaml'),
    await freeFrontendPorts(`stats:
  listen: 127.0.0.1:0
  admin: { token_file: ${tokenFile} }
pools:
  lic:
    affinity: { by: source, ttl: 1h }
    check: { type: none }
    servers:
      - { name: a, address: 127.0.0.1:${a.ports.license} }
      - { name: b, address: 127.0.0.1:${b.ports.license} }
frontends:
  - { name: lic, listen: 127.0.0.1:0, pool: lic }
`),
  );
  const stats = new StatsService({ log: silentLogger });
  const app = await ProxyApp.start({ config, log: silentLogger, services: [stats] });
  t.teardown(() => app.stop(0));
  const base = stats.address!;
  const port = app.runtime.port('lic');
  /** The server that answered a short HELLO from this client (licd names itself in OK server=...). */
  const whoAnswers = async (): Promise<string> => {
    const s = connect(port, '127.0.0.1');
    await once(s, 'connect');
    s.write('HELLO user=u host=h\n');
    const [line] = (await once(s, 'data')) as [Buffer];
    s.end();
    await once(s, 'close');
    return /server=(\w+)/.exec(line.toString())![1]!;
  };
  const first = await whoAnswers();
  const other = first === 'a' ? 'b' : 'a';
  t.is((await adminPost(base, `/api/pools/lic/servers/${first}`, { state: 'drain' }, TOKEN)).status, 200);
  t.is(await whoAnswers(), first, 'a drained server keeps its bound client');
  t.is((await adminPost(base, `/api/pools/lic/servers/${first}`, { bindings: 'clear' }, TOKEN)).status, 200);
  t.is(await whoAnswers(), other, 'with its binding cleared, the client goes elsewhere');
  t.is(await whoAnswers(), other, 'and is bound there');
  const events = (await getJson<{ events: StatsEvent[] }>(base, '/api/events')).json.events;
  t.true(events.some((e) => e.server === first && e.to === 'bindings cleared'));
});
