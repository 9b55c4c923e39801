/**
 * A reload is all or nothing across the runtime and its services (SPEC 2.6): every part prepares what can fail
 * (listeners bound) before any part switches, so a failure anywhere leaves everything as it ran.
 */
import { freePorts } from '../helpers/ports.ts';
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/common/logger.ts';
import { loadProxyConfig } from '../../src/config/proxy-schema.ts';
import { ProxyApp } from '../../src/proxy/app.ts';
import { StatsService } from '../../src/cli/services/stats-service.ts';
import { startNamed } from '../helpers/backend.ts';
import { connectClient, readBytes } from '../helpers/proxy.ts';
import { request } from '../helpers/stats.ts';
import { waitFor } from '../helpers/wait.ts';
import type { StatsSnapshot } from '../../src/stats/snapshot.ts';

/** Each test's frontend ports (a frontend may not listen on port 0), by its backend's port, unique per test. */
const frontendPorts = new Map<number, number[]>();

function yaml(backendPort: number, statsListen: string, frontends: string[]): string {
  const ports = frontendPorts.get(backendPort)!;
  return `stats: { listen: "${statsListen}" }
pools:
  p:
    check: { type: none }
    servers: [ { name: a, address: 127.0.0.1:${backendPort} } ]
frontends:
${frontends.map((f, i) => `  - { name: ${f}, listen: 127.0.0.1:${ports[i]}, pool: p }`).join('\n')}
`;
}

async function busyPort(t: ExecutionContext): Promise<number> {
  const srv: Server = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.teardown(() => srv.close());
  return (srv.address() as { port: number }).port;
}

async function start(t: ExecutionContext): Promise<{ app: ProxyApp; stats: StatsService; file: string; backend: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'lpx-reload-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const backend = (await startNamed(t, 'a')).port;
  frontendPorts.set(backend, await freePorts(2));
  const file = join(dir, 'licproxy.yaml');
  writeFileSync(file, yaml(backend, '127.0.0.1:0', ['f1']));
  const stats = new StatsService({ log: silentLogger });
  const app = await ProxyApp.start({ config: loadProxyConfig(file), log: silentLogger, services: [stats] });
  t.teardown(() => app.stop(0));
  return { app, stats, file, backend };
}

test('stats.listen moved to a port in use: the reload fails whole; the old endpoint answers, the runtime keeps its configuration', async (t) => {
  const { app, stats, file, backend } = await start(t);
  const base = stats.address!;
  const before = app.config;
  const busy = await busyPort(t);
  writeFileSync(file, yaml(backend, `127.0.0.1:${busy}`, ['f1', 'f2']));
  const r = await app.reload();
  t.false(r.ok);
  t.regex(!r.ok ? r.errors.join('\n') : '', new RegExp(`stats\\.listen 127\\.0\\.0\\.1:${busy}: .*EADDRINUSE|address in use`));
  t.is((await request(base, '/health')).status, 200, 'the running stats endpoint still answers');
  t.deepEqual(stats.address, base);
  t.is(app.config, before, 'the runtime is still on the old configuration');
  t.is(app.runtime.frontend('f2'), undefined, 'the new frontend was not switched in');
  const s = await connectClient(t, app.runtime.port('f1'));
  t.is((await readBytes(s, 2)).toString(), 'a\n');
  t.true(app.runtime.eventList().some((e) => e.kind === 'reload' && /reload failed/.test(e.reason)));

  // The same change to a free port applies whole: new frontend and new stats address; the old one stops.
  writeFileSync(file, yaml(backend, '127.0.0.1:0', ['f1', 'f2']).replace('"127.0.0.1:0"', '"127.0.0.2:0"'));
  const ok = await app.reload();
  t.true(ok.ok, JSON.stringify(ok));
  t.is(stats.address!.host, '127.0.0.2');
  t.is((await request(stats.address!, '/health')).status, 200);
  t.not(app.runtime.frontend('f2'), undefined);
  await t.throwsAsync(request(base, '/health'), { code: 'ECONNREFUSED' });
});

test('the last reload is on /stats.json, /stats and /metrics: licproxy_reload_total{result} and the last success time', async (t) => {
  const { app, stats, file, backend } = await start(t);
  const base = stats.address!;
  const json = async () => JSON.parse((await request(base, '/stats.json')).body) as StatsSnapshot;
  const startedAt = (await json()).process.reloads!.lastSuccessAt;
  t.true(startedAt > 0, 'the start counts as the first successful load');
  t.is((await json()).process.reloads!.last, null);
  let metrics = (await request(base, '/metrics')).body;
  t.regex(metrics, /^licproxy_reload_total\{result="ok"\} 0$/m);
  t.regex(metrics, /^licproxy_reload_total\{result="failed"\} 0$/m);

  writeFileSync(file, yaml(backend, '127.0.0.1:0', ['f1', 'f2']));
  t.true((await app.reload()).ok);
  writeFileSync(file, 'pools: {\n');
  t.false((await app.reload()).ok);
  const after = await waitFor(async () => {
    const s = await json();
    return s.process.reloads!.failed === 1 ? s : undefined;
  }, { what: 'the failed reload counted' });
  const r = after.process.reloads!;
  t.is(r.ok, 1);
  t.true(r.lastSuccessAt >= startedAt);
  t.like(r.last, { ok: false });
  t.regex(r.last!.error!, /licproxy\.yaml/);
  metrics = await waitFor(async () => {
    const m = (await request(base, '/metrics')).body;
    return /^licproxy_reload_total\{result="failed"\} 1$/m.test(m) ? m : undefined;
  }, { what: 'metrics' });
  t.regex(metrics, /^licproxy_reload_total\{result="ok"\} 1$/m);
  const ts = Number(/^licproxy_last_reload_success_timestamp_seconds (\S+)$/m.exec(metrics)![1]);
  t.is(ts, r.lastSuccessAt / 1000);
  const html = (await request(base, '/stats')).body;
  t.regex(html, /last reload: <b[^>]*>failed<\/b>/);
  t.regex(html, /licproxy\.yaml/);
});

test('POST /api/reload that moves the stats listener is answered (by the old listener), then the new one serves', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lpx-reload-api-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'admin.token');
  writeFileSync(tokenFile, 'reload-api-token-0123456789\n', { mode: 0o600 });
  const backend = (await startNamed(t, 'a')).port;
  frontendPorts.set(backend, await freePorts(2));
  const file = join(dir, 'licproxy.yaml');
  const text = (listen: string) => yaml(backend, listen, ['f1']).replace(/^stats: \{ listen: "([^"]+)" \}/, `stats: { listen: "$1", admin: { token_file: ${tokenFile} } }`);
  writeFileSync(file, text('127.0.0.1:0'));
  const stats = new StatsService({ log: silentLogger });
  const app = await ProxyApp.start({ config: loadProxyConfig(file), log: silentLogger, services: [stats] });
  t.teardown(() => app.stop(0));
  const base = stats.address!;
  writeFileSync(file, text('127.0.0.2:0'));
  const r = await request(base, '/api/reload', { method: 'POST', headers: { Authorization: 'Bearer reload-api-token-0123456789' } });
  t.is(r.status, 200, r.body);
  t.is(stats.address!.host, '127.0.0.2');
  t.is((await request(stats.address!, '/health')).status, 200);
});
