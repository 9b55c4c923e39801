/**
 * Bindings over time, end to end through real licd servers: a reload that adds a server keeps them, the TTL runs
 * from the client's last close, the table is capped (least recently used first), DRAIN keeps bound clients and
 * MAINT drops them. Plus `licproxy checkout --tokens` through the balancer, the operator's own check of the path.
 */
import test from 'ava';
import type { SourceAffinity } from '../../../src/proxy/affinity/source-affinity.ts';
import type { ProxyRuntime } from '../../../src/proxy/runtime.ts';
import { LICPROXY, runBin } from '../../helpers/cli.ts';
import type { SpawnedLicd } from '../../helpers/licd.ts';
import { waitFor } from '../../helpers/wait.ts';
import { clientAddress, licdProxy, licdProxyConfig, Line, serverOf, spawnLicds, stopAll } from './support.ts';

const NAMES = ['primary', 'secondary', 'tertiary', 'quaternary'];
const THREE = NAMES.slice(0, 3);

let licds: SpawnedLicd[] = [];
test.before(async () => {
  licds = await spawnLicds(null, NAMES);
});
test.after.always(() => stopAll(licds));

/** Opens a license connection from `addr` and says HELLO: the server the balancer chose answers with its name. */
async function open(rt: ProxyRuntime, addr: string): Promise<{ line: Line; server: string }> {
  const line = await Line.connect(rt.port('license'), addr);
  const server = serverOf(await line.request(`HELLO user=u host=h`));
  if (!server) throw new Error('no HELLO answer');
  return { line, server };
}

/** Where a client lands now (one connection, closed at once). */
async function whereIs(rt: ProxyRuntime, addr: string): Promise<string> {
  const c = await open(rt, addr);
  c.line.destroy();
  return c.server;
}

function affinity(rt: ProxyRuntime) {
  return rt.pool('lic')!.snapshot().affinity;
}

test('a reload that adds a server leaves every binding where it was; new clients reach the new server', async (t) => {
  const rt = await licdProxy(t, licds.slice(0, 3), THREE, { by: 'source' });
  const before = new Map<string, string>();
  for (let i = 0; i < 60; i++) before.set(clientAddress(41, i), await whereIs(rt, clientAddress(41, i)));
  t.is(new Set(before.values()).size, 3);

  const summary = await rt.apply(licdProxyConfig(licds, NAMES, { by: 'source' }));
  t.deepEqual(summary.changed, ['pool lic']);
  for (const [addr, server] of before) t.is(await whereIs(rt, addr), server, `${addr} stays on ${server}`);
  const fresh = [];
  for (let i = 0; i < 12; i++) fresh.push(await whereIs(rt, clientAddress(42, i)));
  t.true(fresh.includes('quaternary'), 'the added server takes new clients');
  t.is(affinity(rt).bindings, 72);
});

test('ttl runs from the client\'s last close; expired bindings are swept', async (t) => {
  const rt = await licdProxy(t, licds.slice(0, 3), THREE, { by: 'source', ttl: 300 });
  const table = (rt.pool('lic')!.affinity as SourceAffinity).table;
  const a = clientAddress(43, 1);
  const b = clientAddress(43, 2);
  const held = await open(rt, a); // A keeps a connection open
  (await open(rt, b)).line.destroy(); // B closes: its TTL starts
  t.is(affinity(rt).bindings, 2);
  await waitFor(() => affinity(rt).bindings === 1, { timeout: 10_000, what: "B's binding to expire" });
  const hits = affinity(rt).hits;
  t.is(await whereIs(rt, a), held.server, 'A, still connected past the TTL, keeps its server');
  t.is(affinity(rt).hits, hits + 1);
  held.line.destroy();
  await waitFor(() => table.size === 0, { timeout: 10_000, what: 'the sweeper to drop both expired bindings' });
  const misses = affinity(rt).misses;
  await whereIs(rt, a);
  t.is(affinity(rt).misses, misses + 1, 'after the TTL, A is balanced anew');
  t.true(affinity(rt).expired >= 2);
});

test('max_bindings caps the table: the least recently used idle bindings are evicted', async (t) => {
  const rt = await licdProxy(t, licds.slice(0, 3), THREE, { by: 'source', maxBindings: 5 });
  const where: string[] = [];
  for (let i = 0; i < 10; i++) {
    where.push(await whereIs(rt, clientAddress(44, i)));
    // The proxy has seen the close: the binding is idle (a binding with an open connection would be spared).
    await waitFor(() => rt.frontend('license')!.counters.current === 0, { timeout: 10_000 });
  }
  t.like(affinity(rt), { bindings: 5, capacityEvictions: 5, misses: 10, hits: 0 });
  t.is(await whereIs(rt, clientAddress(44, 9)), where[9], 'a recent client is still bound');
  t.is(affinity(rt).hits, 1);
  await whereIs(rt, clientAddress(44, 0));
  t.is(affinity(rt).misses, 11, 'the oldest was evicted: balanced anew');
});

test('DRAIN keeps bound clients, MAINT drops them', async (t) => {
  const rt = await licdProxy(t, licds.slice(0, 3), THREE, { by: 'source' });
  const addr = clientAddress(45, 1);
  const bound = await whereIs(rt, addr);
  const server = rt.server('lic', bound)!;
  server.setAdminState('drain');
  t.is(await whereIs(rt, addr), bound, 'DRAIN: the bound client still goes there');
  for (let i = 0; i < 6; i++) t.not(await whereIs(rt, clientAddress(46, i)), bound, 'DRAIN: no new client');
  server.setAdminState('maint');
  const moved = await whereIs(rt, addr);
  t.not(moved, bound, 'MAINT: the binding is dropped');
  server.setAdminState('ready');
  t.is(await whereIs(rt, addr), moved, 'and the new binding holds');
});

test('licproxy checkout --tokens through the balancer: granted with affinity, UNKNOWN_HANDLE without', async (t) => {
  t.timeout(60_000);
  for (const by of ['source', 'handle'] as const) {
    const rt = await licdProxy(t, licds.slice(0, 3), THREE, { by });
    for (let i = 0; i < 3; i++) {
      const r = await runBin(LICPROXY, ['checkout', 'LS-DYNA', '-s', `127.0.0.1:${rt.port('license')}`, '--tokens', '8', '--token-port', String(rt.port('tokens'))]);
      t.is(r.code, 0, `by ${by}: ${r.stderr}`);
      t.regex(r.stdout, /tokens 8 granted \(MPPDYNA\)/);
      t.regex(r.stdout, /checked in/);
    }
  }
  const none = await licdProxy(t, licds.slice(0, 3), THREE, { by: 'none' });
  const r = await runBin(LICPROXY, ['checkout', 'LS-DYNA', '-s', `127.0.0.1:${none.port('license')}`, '--tokens', '8', '--token-port', String(none.port('tokens'))]);
  t.not(r.code, 0, 'round robin sends the token connection to the next server');
  t.regex(r.stderr, /UNKNOWN_HANDLE/);
});
