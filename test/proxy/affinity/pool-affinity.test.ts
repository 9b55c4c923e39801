/**
 * Affinity at the pool seam (`pool.select`), without sockets: when a binding is made, which server states keep
 * it, which drop it, retries, reloads and the counters the stats page reads.
 */
import test from 'ava';
import type { HandleAffinity } from '../../../src/proxy/affinity/handle-affinity.ts';
import type { Pool, SelectContext } from '../../../src/proxy/pool.ts';
import { Server } from '../../../src/proxy/server.ts';
import { makePool, makeTestPool, type PoolSpec } from '../../helpers/proxy.ts';

const three: PoolSpec['servers'] = [
  { name: 'a', port: 1 },
  { name: 'b', port: 2 },
  { name: 'c', port: 3 },
];

function sourcePool(extra: Partial<PoolSpec> = {}): Pool {
  return makeTestPool({ name: 'p', affinity: { by: 'source', ttl: 3_600_000, maxBindings: 1000 }, servers: three, ...extra });
}

type MutableContext = SelectContext & { exclude: Server[] | null };

function client(ip: string): MutableContext {
  return { clientIp: ip, exclude: null, frontendName: 'fe', binding: null, handleServer: null };
}

/** A connection's life at the seam: placed, then (later) ended. */
function place(pool: Pool, ip: string): { server: Server; ctx: MutableContext } {
  const ctx = client(ip);
  const r = pool.select(ctx);
  if (!(r instanceof Server)) throw new Error(`not placed: ${String(r)}`);
  return { server: r, ctx };
}

test('by source: the binding is made at the first select, so a second connection of the client follows it', (t) => {
  const pool = sourcePool();
  const first = place(pool, '10.0.0.1');
  t.is(first.ctx.binding?.server, first.server, 'bound before any server connect');
  // Round robin would now move on; the client's next connections stay, whatever other clients do in between.
  for (let i = 0; i < 5; i++) {
    place(pool, `10.0.1.${i}`);
    t.is(place(pool, '10.0.0.1').server, first.server);
  }
  const a = pool.snapshot().affinity;
  t.like(a, { by: 'source', bindings: 6, hits: 5, misses: 6 });
  const counts = Object.fromEntries(pool.snapshot().servers.map((s) => [s.name, s.bindings]));
  t.is(counts.a! + counts.b! + counts.c!, 6);
});

test('by source: DRAIN and weight 0 keep bound clients; MAINT and DOWN drop them and the client is balanced anew', (t) => {
  const pool = sourcePool();
  const { server: s } = place(pool, '10.0.0.1');
  s.setAdminState('drain');
  t.is(place(pool, '10.0.0.1').server, s, 'DRAIN keeps its bound clients');
  t.not(place(pool, '10.9.9.9').server, s, 'but takes no new ones');
  s.setAdminState('ready');
  s.setWeight(0);
  t.is(place(pool, '10.0.0.1').server, s, 'weight 0 keeps its bound clients');
  s.setWeight(1);

  s.setAdminState('maint');
  const moved = place(pool, '10.0.0.1').server;
  t.not(moved, s, 'MAINT drops the binding');
  s.setAdminState('ready');
  t.is(place(pool, '10.0.0.1').server, moved, 'the new binding holds when the old server is back');

  moved.setHealth('down', 'test');
  const again = place(pool, '10.0.0.1').server;
  t.not(again, moved, 'DOWN drops the binding');
  t.true(again.takesNewClients(Date.now()));
});

test('by source: a retry goes back to the bound server while it is usable; once DOWN the retry is balanced and rebinds', (t) => {
  const pool = sourcePool();
  const { server: s, ctx } = place(pool, '10.0.0.1');
  ctx.exclude = [s]; // its connect failed: a redispatch would pick another server
  t.is(pool.select(ctx), s, 'bound: retried on the same server, no redispatch');
  s.setHealth('down', 'passive failures reached fall');
  const next = pool.select(ctx) as Server;
  t.not(next, s);
  t.is(ctx.binding?.server, next, 'the connection now holds the new binding');
  t.is(place(pool, '10.0.0.1').server, next, 'and the client follows it');
});

test('by source: a bound client whose server is full waits in the queue for that server', (t) => {
  const pool = sourcePool({ servers: three.map((s) => ({ ...s, maxConnections: 1 })) });
  const { server: s, ctx } = place(pool, '10.0.0.1');
  s.attach({ close: () => {}, bytesIn: 0, bytesOut: 0 }); // the client's first connection occupies the only slot
  const second = client('10.0.0.1');
  t.is(pool.select(second), 'full', 'queued, not sent elsewhere');
  t.is(second.binding?.server, s);
  pool.release(ctx);
});

test('by source in master mode: a server that loses MASTER loses its bound clients to the new master', (t) => {
  const pool = sourcePool({ mode: 'master', check: { type: 'lmstat' } });
  const [a, b] = [pool.server('a')!, pool.server('b')!];
  const ok = (master: boolean) => ({ ok: true, reason: 'ok', durationMs: 1, at: Date.now(), master });
  a.recordCheck(ok(true));
  t.is(place(pool, '10.0.0.1').server, a);
  a.recordCheck(ok(false));
  b.recordCheck(ok(true));
  t.is(place(pool, '10.0.0.1').server, b);
});

test('by source: a reload that adds a server keeps every binding and applies the new ttl / max_bindings', (t) => {
  const pool = sourcePool();
  const before = new Map<string, Server>();
  for (let i = 0; i < 30; i++) before.set(`10.0.0.${i}`, place(pool, `10.0.0.${i}`).server);
  const cfg = makePool({
    name: 'p',
    affinity: { by: 'source', ttl: 60_000, maxBindings: 500 },
    servers: [...three, { name: 'd', port: 4 }],
  });
  pool.update(cfg);
  for (const [ip, s] of before) t.is(place(pool, ip).server, s, `${ip} stays on ${s.name}`);
  t.like(pool.snapshot().affinity, { ttl: 60_000, maxBindings: 500, bindings: 30 });
  t.true([...Array(12).keys()].some((i) => place(pool, `10.1.0.${i}`).server.name === 'd'), 'new clients reach d');

  // A server removed by the reload drops its bindings.
  const onC = [...before].filter(([, s]) => s.name === 'c').map(([ip]) => ip);
  pool.update(makePool({ name: 'p', affinity: { by: 'source', ttl: 60_000, maxBindings: 500 }, servers: [three[0]!, three[1]!, { name: 'd', port: 4 }] }));
  for (const ip of onC) t.not(place(pool, ip).server.name, 'c');
});

test('by none: no affinity object, no lookups; the snapshot says none', (t) => {
  const pool = makeTestPool({ name: 'p', servers: three });
  t.is(pool.affinity, null);
  const a = place(pool, '10.0.0.1').server;
  t.not(place(pool, '10.0.0.1').server, a, 'plain round robin');
  t.like(pool.snapshot().affinity, { by: 'none', bindings: 0, hits: 0, misses: 0, evictions: 0 });
});

test('by handle: route decisions from the first line', (t) => {
  const pool = makeTestPool({ name: 'p', affinity: { by: 'handle', ttl: 1000, maxBindings: 10 }, servers: three });
  const h = pool.affinity as HandleAffinity;
  const b = pool.server('b')!;
  t.is(h.route('TOKENS b.1a 8'), b);
  t.is(h.route('HELLO user=u host=h'), null, 'no handle: balanced');
  t.is(h.route('CHECKOUT LS-DYNA'), null);
  t.is(h.route('TOKENS zz.1a 8'), 'unknown', 'not a server of the pool');
  pool.server('b')!.setAdminState('drain');
  t.is(h.route('TOKENS b.1a 8'), b, 'DRAIN still serves its sessions');
  pool.server('b')!.setAdminState('maint');
  t.is(h.route('TOKENS b.1a 8'), 'unknown', 'balance pool: the session died with its server');
  t.is(h.route('RESUME b.1a'), null, 'RESUME is balanced: another member may hold the replicated session');

  const failover = makeTestPool({ name: 'f', mode: 'failover', affinity: { by: 'handle', ttl: 1000, maxBindings: 10 }, servers: three });
  failover.server('a')!.setHealth('down', 'test');
  t.is((failover.affinity as HandleAffinity).route('TOKENS a.1 2'), null, 'redundant set: the serving member answers');

  const c = pool.server('c')!;
  const ctx = client('10.0.0.1');
  ctx.handleServer = c;
  ctx.exclude = [c];
  t.is(pool.select(ctx), c, 'a handle-routed retry stays on its server');
});
