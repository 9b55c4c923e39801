/**
 * `global.workers`: one balancer as a primary and worker processes. Real licd servers, the real CLI, real
 * sockets: connections are spread over the workers, affinity, health and admin state hold across them, a killed
 * worker loses only its own connections and is replaced, reloads reach every worker.
 */
import { createServer } from 'node:net';
import test from 'ava';
import { LineClient, startLicd, type InProcessLicd } from '../helpers/licd.ts';
import { freeFrontendPorts } from '../helpers/ports.ts';
import { adminPost } from '../helpers/stats.ts';
import { waitFor } from '../helpers/wait.ts';
import { closedLines, isAlive, runCluster, TOKEN, type RunningCluster } from './support.ts';

const FEATURES = [
  { name: 'LS-DYNA', version: '2025.1', count: 500 },
  { name: 'MPPDYNA', count: 5000, kind: 'tokens' as const },
];

async function licds(t: import('ava').ExecutionContext, names: string[]): Promise<Record<string, InProcessLicd>> {
  const out: Record<string, InProcessLicd> = {};
  for (const name of names) {
    out[name] = await startLicd({ name, features: FEATURES });
    t.teardown(() => out[name]!.stop());
  }
  return out;
}

function config(l: Record<string, InProcessLicd>, pool: string, tokenFile: string, extra = '', global = ''): string {
  return `
global:
  workers: 2
  grace: 2s${global}
stats:
  listen: 127.0.0.1:0
  admin: { token_file: ${tokenFile} }
pools:
  lic:
${pool}
    ports: { license: 1, tokens: 2 }
    check: { type: tcp, interval: 100ms, fast_interval: 50ms, down_interval: 100ms, fall: 2, rise: 1, ports: [license, tokens] }
    servers:
${Object.entries(l).map(([n, x]) => `      - { name: ${n}, host: 127.0.0.1, ports: { license: ${x.ports.license}, tokens: ${x.ports.tokens} } }`).join('\n')}
frontends:
  - { name: license, listen: 127.0.0.1:0, pool: lic, port: license }
  - { name: tokens, listen: 127.0.0.1:0, pool: lic, port: tokens }
${extra}`;
}

async function allUp(c: RunningCluster, n: number): Promise<void> {
  await waitFor(async () => (await c.json()).pools[0]!.servers.filter((s) => s.status === 'UP').length === n, { timeout: 15_000, what: `${n} servers UP` });
}

/** A license session over both ports, as a solver does: checkout on the license port, tokens on the token port. */
async function session(lic: number, tok: number): Promise<{ server: string; tokens: string }> {
  const [a, b] = await Promise.all([LineClient.connect(lic), LineClient.connect(tok)]);
  try {
    const hello = await a.request('HELLO user=u host=h');
    const server = /server=(\S+)/.exec(hello)?.[1] ?? '?';
    const granted = await a.request('CHECKOUT LS-DYNA');
    const handle = /handle=(\S+)/.exec(granted)?.[1] ?? '?';
    const tokens = await b.request(`TOKENS ${handle} 2`);
    await a.request(`CHECKIN ${handle}`);
    return { server, tokens };
  } finally {
    a.destroy();
    b.destroy();
  }
}

test('workers: both accept; affinity by source, health and admin state hold across them; counters add up; SIGTERM stops all', async (t) => {
  const l = await licds(t, ['alpha', 'beta']);
  const c = await runCluster(t, (tf) => config(l, '    balance: roundrobin\n    affinity: { by: source, ttl: 10m }', tf));
  const [lic, tok] = [await c.port('license'), await c.port('tokens')];
  await allUp(c, 2);
  const pids = await c.workerPids();
  t.is(pids.length, 2);

  // Every session's two ports meet on one server, though the workers take connections in turn.
  const first = await Promise.all(Array.from({ length: 10 }, () => session(lic, tok)));
  for (const s of first) t.regex(s.tokens, /^GRANTED tokens=2/);
  const bound = first[0]!.server;
  t.true(first.every((s) => s.server === bound), 'one client address, one server');
  await waitFor(() => closedLines(c).length >= 20, { what: 'connection lines' });
  const byWorker = new Set(closedLines(c).map((x) => x.worker));
  t.deepEqual([...byWorker].sort(), [0, 1], 'both workers forwarded');

  const s1 = await waitFor(async () => {
    const j = await c.json();
    return j.frontends.every((f) => f.stot === 10 && f.scur === 0) ? j : null;
  }, { what: 'frontend totals from both workers' });
  const servers = s1.pools[0]!.servers;
  t.is(servers.find((s) => s.name === bound)!.stot, 20);
  t.is(s1.pools[0]!.affinity.bindings, 1);

  // The admin API talks to the primary; the workers follow: the bound server in MAINT, clients move to the other.
  const other = bound === 'alpha' ? 'beta' : 'alpha';
  const r = await adminPost(c.stats, `/api/pools/lic/servers/${bound}`, { state: 'maint' }, TOKEN);
  t.is(r.status, 200);
  await waitFor(async () => (await c.json()).pools[0]!.servers.find((s) => s.name === bound)!.status === 'MAINT');
  const moved = await Promise.all(Array.from({ length: 6 }, () => session(lic, tok)));
  t.true(moved.every((s) => s.server === other && s.tokens.startsWith('GRANTED')), JSON.stringify(moved));

  // Health is checked once, by the primary: the other server stops, every worker sends clients back... to none but it.
  await adminPost(c.stats, `/api/pools/lic/servers/${bound}`, { state: 'ready' }, TOKEN);
  await l[other]!.stop();
  await waitFor(async () => (await c.json()).pools[0]!.servers.find((s) => s.name === other)!.status === 'DOWN', { timeout: 10_000 });
  const back = await Promise.all(Array.from({ length: 6 }, () => session(lic, tok)));
  t.true(back.every((s) => s.server === bound && s.tokens.startsWith('GRANTED')), JSON.stringify(back));

  c.child.kill('SIGTERM');
  t.is(await c.exited, 0);
  await waitFor(() => pids.every((p) => !isAlive(p)), { what: 'workers gone' });
  t.false(/at .*\.ts:\d+/.test(c.stderr()), 'no stack trace');
});

test('workers: a killed worker loses only its own connections and is replaced; the others keep answering', async (t) => {
  const l = await licds(t, ['alpha', 'beta']);
  const c = await runCluster(t, (tf) => config(l, '    balance: leastconn', tf));
  const lic = await c.port('license');
  await allUp(c, 2);
  const pids = await c.workerPids();

  const held: LineClient[] = [];
  for (let i = 0; i < 60; i++) {
    const x = await LineClient.connect(lic);
    t.teardown(() => x.destroy());
    t.regex(await x.request(`HELLO user=u${i} host=h`), /^OK/);
    t.regex(await x.request('CHECKOUT LS-DYNA'), /^GRANTED/);
    held.push(x);
  }
  const inUse = (): number => l.alpha!.server.pool('LS-DYNA')!.inUse + l.beta!.server.pool('LS-DYNA')!.inUse;
  t.is(inUse(), 60);

  // Pages are re-rendered at most every 20x their render time (stats-server.ts): poll until the counts are in.
  const ws = await waitFor(async () => {
    const w = (await c.json()).process.workers!;
    return w[0]!.connections + w[1]!.connections === 60 ? w : null;
  }, { what: 'each worker reports its connections, 60 in all' });
  const mine = ws[0]!.connections;
  t.true(mine > 0 && mine < 60, `both workers hold some: ${mine}`);

  process.kill(pids[0]!, 'SIGKILL');
  // Exactly its connections close: the clients see the close, licd frees their seats.
  await waitFor(() => held.filter((x) => x.isClosed).length === mine && inUse() === 60 - mine, {
    timeout: 10_000,
    what: `the ${mine} connections of worker 0 closed and their seats freed`,
  });
  const alive = held.filter((x) => !x.isClosed);
  for (const x of alive) t.is(await x.request('HEARTBEAT'), 'OK');

  const replaced = await waitFor(async () => {
    const ws = (await c.json()).process.workers ?? [];
    const w0 = ws.find((w) => w.index === 0);
    return w0 && w0.pid !== 0 && w0.pid !== pids[0] && w0.restarts === 1 ? w0.pid : 0;
  }, { timeout: 15_000, what: 'worker 0 replaced' });
  t.true(isAlive(replaced));
  t.true(isAlive(pids[1]!), 'the other worker lives on');

  // New clients are served, by the new worker too.
  for (let i = 0; i < 6; i++) {
    const x = await LineClient.connect(lic);
    t.regex(await x.request('HELLO user=n host=h'), /^OK/);
    x.destroy();
  }
  await waitFor(() => closedLines(c).some((x) => x.pid === replaced), { what: 'a connection through the new worker' });
  for (const x of alive) t.is(await x.request('HEARTBEAT'), 'OK', 'held connections untouched by the replacement');
  const events = (await import('../helpers/stats.ts')).getJson<{ events: { type: string; reason: string }[] }>(c.stats, '/api/events');
  t.true((await events).json.events.some((e) => e.type === 'worker' && /worker 0/.test(e.reason)));
  const metrics = await waitFor(async () => {
    const m = (await (await import('../helpers/stats.ts')).request(c.stats, '/metrics')).body;
    return /^licproxy_workers 2$/m.test(m) ? m : null;
  }, { what: 'licproxy_workers 2' });
  t.regex(metrics, /^licproxy_worker_restarts_total\{worker="0"\} 1$/m);
  t.regex(metrics, /^licproxy_worker_restarts_total\{worker="1"\} 0$/m);
});

test('workers accepting for themselves (worker_accept: shared): a reload reaches every worker; a listen address in use fails it whole', async (t) => {
  const l = await licds(t, ['alpha']);
  const c = await runCluster(t, (tf) => config(l, '    balance: roundrobin', tf, '', '\n  worker_accept: shared'));
  const lic = await c.port('license');
  await allUp(c, 1);
  const held = await LineClient.connect(lic);
  t.teardown(() => held.destroy());
  t.regex(await held.request('HELLO user=u host=h'), /^OK/);

  const { readFileSync, writeFileSync } = await import('node:fs');
  const base = readFileSync(c.file, 'utf8');
  writeFileSync(c.file, await freeFrontendPorts(base + '  - { name: extra, listen: 127.0.0.1:0, pool: lic, port: license }\n'));
  c.child.kill('SIGHUP');
  await waitFor(() => c.lines().filter((x) => x.msg === 'listening' && x.frontend === 'extra').length === 2, { timeout: 15_000, what: 'both workers listening on the new frontend' });
  const extra = await c.port('extra');
  // The kernel picks the accepting worker: connections until both have served one (bounded).
  await waitFor(async () => {
    const x = await LineClient.connect(extra);
    t.regex(await x.request('HELLO user=e host=h'), /^OK/);
    x.destroy();
    return new Set(closedLines(c).filter((y) => y.frontend === 'extra').map((y) => y.worker)).size === 2;
  }, { timeout: 15_000, what: 'extra served by both workers' });

  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  t.teardown(() => taken.close());
  const busy = (taken.address() as { port: number }).port;
  writeFileSync(c.file, base + `  - { name: clash, listen: 127.0.0.1:${busy}, pool: lic, port: license }\n`);
  c.child.kill('SIGHUP');
  await waitFor(() => c.lines().some((x) => x.msg === 'reload failed: keeping the running configuration'), { timeout: 15_000 });
  t.true(c.lines().some((x) => typeof x.msg === 'string' && x.msg.includes(`127.0.0.1:${busy}`)), 'the error names the address');
  const ev = await (await import('../helpers/stats.ts')).getJson<{ events: { type: string; reason: string }[] }>(c.stats, '/api/events');
  t.true(ev.json.events.some((e) => e.type === 'reload' && e.reason.startsWith('reload failed') && e.reason.includes(`127.0.0.1:${busy}`)), 'a failed reload is an event too');
  // Still the running configuration: extra still served, the held connection untouched.
  const x = await LineClient.connect(extra);
  t.regex(await x.request('HELLO user=e host=h'), /^OK/);
  x.destroy();
  t.is(await held.request('HEARTBEAT'), 'OK');
  // Polled: the primary's page merges the workers' last snapshots, which a loaded machine may answer late.
  await waitFor(async () => (await c.json()).frontends.some((f) => f.name === 'extra' && f.status === 'OPEN'), { timeout: 15_000, what: 'extra OPEN on /stats.json' });

  // A new frontend on a free port, but the stats listener moved onto the busy one: the workers had opened the new
  // frontend's listener (prepared), and close it again when the primary's stats part fails.
  const spare = createServer();
  await new Promise<void>((r) => spare.listen(0, '127.0.0.1', r));
  const late = (spare.address() as { port: number }).port;
  await new Promise<void>((r) => spare.close(() => r()));
  const failures = c.lines().filter((x) => x.msg === 'reload failed: keeping the running configuration').length;
  writeFileSync(c.file, base.replace('  listen: 127.0.0.1:0\n', `  listen: 127.0.0.1:${busy}\n`) + `  - { name: late, listen: 127.0.0.1:${late}, pool: lic, port: license }\n`);
  c.child.kill('SIGHUP');
  await waitFor(() => c.lines().filter((x) => x.msg === 'reload failed: keeping the running configuration').length > failures, { timeout: 15_000, what: 'the second reload failed' });
  t.true(c.lines().some((x) => typeof x.msg === 'string' && x.msg.startsWith(`stats.listen 127.0.0.1:${busy}`)), 'the error names the stats address');
  await waitFor(async () => {
    try {
      (await LineClient.connect(late)).destroy();
      return false;
    } catch {
      return true;
    }
  }, { timeout: 15_000, what: 'the prepared frontend closed again in every worker' });
  t.false((await c.json()).frontends.some((f) => f.name === 'late'), 'the primary never switched it in');
  t.is(await held.request('HEARTBEAT'), 'OK');
});
