/**
 * The SPEC 8 examples, started as written against the shipped licd files (child processes on their loopback
 * ports): pools, feature, balance, overflow, affinity and checks stay; only server addresses move to those licd
 * ports, frontends to ephemeral ports, allow lists to loopback, and the minutes-long delays to a second so the
 * failover in each test runs in test time. Clients come from distinct loopback addresses (affinity is by source).
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { silentLogger } from '../../src/common/logger.ts';
import { parseProxyConfig } from '../../src/config/proxy-schema.ts';
import { createMonitorFactory } from '../../src/health/health-monitor.ts';
import { ProxyApp } from '../../src/proxy/app.ts';
import { LICD, REPO } from '../helpers/cli.ts';
import { LineClient } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';
import { freePort } from '../helpers/ports.ts';

type Json = Record<string, any>;

interface Started {
  app: ProxyApp;
  port: number;
  pool: string;
  children: Map<string, ChildProcess>;
}

async function startExample(t: ExecutionContext, example: string, licdFiles: string[], shorten: (pool: Json) => void): Promise<Started> {
  const doc = YAML.parse(readFileSync(join(REPO, 'conf/examples', example), 'utf8')) as Json;
  const [poolName, pool] = Object.entries(doc.pools as Json)[0]! as [string, Json];
  const children = new Map<string, ChildProcess>();
  const ports = new Map<string, number>();
  for (const file of licdFiles) {
    const licd = YAML.parse(readFileSync(join(REPO, 'conf/examples/licd', file), 'utf8')) as Json;
    const child = spawn(process.execPath, [LICD, '-c', join('conf/examples/licd', file), '--log-level', 'warn'], { cwd: REPO, stdio: 'ignore' });
    t.teardown(() => stopChild(child));
    children.set(licd.server.name, child);
    ports.set(licd.server.name, licd.server.ports.license);
  }
  // Every licd listens before the balancer starts: a server first seen DOWN, then UP, would be a failback (stepped).
  for (const port of ports.values()) {
    await waitFor(
      async () => {
        const c = await LineClient.connect(port).catch(() => null);
        c?.destroy();
        return c !== null;
      },
      { timeout: 15_000, what: `licd on port ${port}` },
    );
  }
  for (const s of pool.servers as Json[]) {
    t.true(ports.has(s.name), `a licd file for server ${s.name}`);
    s.address = `127.0.0.1:${ports.get(s.name)}`;
  }
  shorten(pool);
  delete doc.stats;
  for (const f of doc.frontends as Json[]) {
    f.listen = `127.0.0.1:${await freePort()}`;
    if (f.allow) f.allow = ['127.0.0.0/8'];
  }
  const config = parseProxyConfig(example, YAML.stringify(doc));
  t.deepEqual(config.warnings ?? [], [], 'the example passes check without warnings');
  const app = await ProxyApp.start({ config, log: silentLogger, monitorFactory: createMonitorFactory() });
  t.teardown(() => app.stop(0));
  await waitFor(
    () => app.runtime.pool(poolName)!.snapshot().servers.every((s) => s.status === 'UP' && s.lastCheck?.features !== undefined),
    { timeout: 30_000, what: `every server of ${example} UP and checked` },
  );
  return { app, port: app.runtime.port(config.frontends[0]!.name), pool: poolName, children };
}

let nextClient = 1;
/** A client from its own loopback address: HELLO, CHECKOUT; the connection stays open (the seat held). */
async function checkout(t: ExecutionContext, port: number, feature: string): Promise<{ server: string; answer: string; client: LineClient }> {
  const n = nextClient++;
  const client = await LineClient.connect(port, { localAddress: `127.0.${1 + (n >> 8)}.${n & 255 || 1}` });
  t.teardown(() => client.destroy());
  const hello = await client.request('HELLO user=u host=h', 60_000);
  const answer = await client.request(`CHECKOUT ${feature}`);
  return { server: /server=(\S+)/.exec(hello)?.[1] ?? '?', answer, client };
}

test.serial('example lmx-geographic: local site up to 80%, the remote site above it; a local outage past the delay moves new clients', async (t) => {
  t.timeout(120_000);
  const { app, port, pool, children } = await startExample(t, 'lmx-geographic.yaml', ['geo-east1.yaml', 'geo-east2.yaml', 'geo-west1.yaml', 'geo-west2.yaml'], (p) => {
    p.failover.delay = '1s';
    p.failback.delay = '0s';
    p.check.interval = '300ms';
  });
  // East has 40 seats: 32 (80%) stay local, the next ones cross to west.
  const local = [];
  for (let i = 0; i < 32; i++) local.push(await checkout(t, port, 'CFD_SOLVER'));
  const misplaced = local.filter((c) => !(c.answer.startsWith('GRANTED') && c.server.startsWith('east')));
  t.deepEqual(
    misplaced.map((c) => `${c.server}: ${c.answer}`),
    [],
    `first 80% on east; servers: ${JSON.stringify(app.runtime.pool(pool)!.snapshot().servers.map((s) => [s.name, s.status, s.freeSeats, s.lastCheck?.reason]))}`,
  );
  const remote = await checkout(t, port, 'CFD_SOLVER');
  t.regex(remote.server, /^west/);
  t.regex(remote.answer, /^GRANTED/);
  // The east site goes away: after the failover delay new clients go west; the held west seat is untouched.
  for (const n of ['east1', 'east2']) children.get(n)!.kill('SIGKILL');
  await waitFor(() => app.runtime.pool(pool)!.snapshot().servers.filter((s) => s.name.startsWith('east')).every((s) => s.status === 'DOWN'), {
    timeout: 30_000,
    what: 'east DOWN',
  });
  const moved = await checkout(t, port, 'CFD_SOLVER');
  t.regex(moved.server, /^west/);
  t.regex(moved.answer, /^GRANTED/);
  t.true(app.runtime.eventList().some((e) => e.kind === 'failover'));
  t.false(remote.client.isClosed, 'the west client kept its connection');
});

test.serial('example seats-active-active: new clients go by free seats, none denied while seats are free; a dead server takes none', async (t) => {
  t.timeout(120_000);
  const { app, port, pool, children } = await startExample(t, 'seats-active-active.yaml', ['seats-lic1.yaml', 'seats-lic2.yaml', 'seats-lic3.yaml'], () => {});
  // 30 clients for 40 seats (10 / 10 / 20): every one granted, lic3 (twice the seats) takes the most.
  const first = await Promise.all(Array.from({ length: 30 }, () => checkout(t, port, 'SOLVER')));
  const by: Record<string, number> = {};
  for (const c of first) by[c.server] = (by[c.server] ?? 0) + 1;
  t.true(first.every((c) => c.answer.startsWith('GRANTED')), JSON.stringify(by));
  t.true((by.lic3 ?? 0) > (by.lic1 ?? 0) && (by.lic3 ?? 0) > (by.lic2 ?? 0), JSON.stringify(by));
  // lic3 dies: its clients are gone with it; the seats left on lic1 + lic2 go to the next clients, none denied.
  children.get('lic3')!.kill('SIGKILL');
  await waitFor(() => app.runtime.pool(pool)!.snapshot().servers.find((s) => s.name === 'lic3')!.status === 'DOWN', { timeout: 30_000, what: 'lic3 DOWN' });
  const left = 20 - (by.lic1 ?? 0) - (by.lic2 ?? 0);
  t.true(left > 0, 'seats left on lic1 + lic2');
  const after = [];
  for (let i = 0; i < left; i++) after.push(await checkout(t, port, 'SOLVER'));
  t.true(after.every((c) => c.answer.startsWith('GRANTED') && c.server !== 'lic3'), JSON.stringify(after.map((c) => [c.server, c.answer])));
});

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}
