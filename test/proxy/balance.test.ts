import test from 'ava';
import { Server } from '../../src/proxy/server.ts';
import type { SelectContext } from '../../src/proxy/pool.ts';
import { makeTestPool, type ServerSpec } from '../helpers/proxy.ts';
import { connectClient, readBytes, startProxy } from '../helpers/proxy.ts';
import { startNamed } from '../helpers/backend.ts';

const ctx = (clientIp = '10.0.0.1'): SelectContext => ({ clientIp, exclude: null, frontendName: 'fe' });
const servers = (weights: number[], extra: Partial<ServerSpec> = {}): ServerSpec[] =>
  weights.map((weight, i) => ({ name: String.fromCharCode(97 + i), port: 1000 + i, weight, ...extra }));

function pickName(pool: ReturnType<typeof makeTestPool>, c = ctx()): string {
  const s = pool.select(c);
  if (!(s instanceof Server)) throw new Error(`no server: ${String(s)}`);
  return s.name;
}

const distribution = [
  { weights: [100, 80, 60], picks: 6000 },
  { weights: [1, 1, 1], picks: 3000 },
  { weights: [256, 1], picks: 2570 },
  { weights: [3, 0, 1], picks: 4000 },
];

for (const row of distribution) {
  test(`roundrobin: weights ${row.weights.join('/')} share new clients by weight (within 2 points)`, (t) => {
    const pool = makeTestPool({ name: 'p', servers: servers(row.weights) });
    const counts = new Map<string, number>();
    for (let i = 0; i < row.picks; i++) {
      const n = pickName(pool);
      counts.set(n, (counts.get(n) ?? 0) + 1);
    }
    const total = row.weights.reduce((a, b) => a + b, 0);
    row.weights.forEach((w, i) => {
      const name = String.fromCharCode(97 + i);
      const share = ((counts.get(name) ?? 0) / row.picks) * 100;
      t.true(Math.abs(share - (w / total) * 100) <= 2, `${name}: ${share.toFixed(2)}% for weight ${w}/${total}`);
    });
  });
}

const orders = [
  { weights: [5, 1, 1], order: 'aabacaa' },
  { weights: [1, 1, 1], order: 'abcabc' },
  { weights: [2, 1], order: 'abaaba' },
];
for (const row of orders) {
  test(`roundrobin is smooth: weights ${row.weights.join('/')} give ${row.order}`, (t) => {
    const pool = makeTestPool({ name: 'p', servers: servers(row.weights) });
    let seq = '';
    for (let i = 0; i < row.order.length * 2; i++) seq += pickName(pool);
    t.is(seq, row.order + row.order);
  });
}

test('roundrobin skips a full server and follows an admin weight change at once', (t) => {
  const pool = makeTestPool({ name: 'p', servers: [{ name: 'a', port: 1, maxConnections: 1 }, { name: 'b', port: 2 }] });
  const a = pool.server('a')!;
  a.attach({ close() {}, bytesIn: 0, bytesOut: 0 });
  t.is(pickName(pool) + pickName(pool) + pickName(pool), 'bbb');
  a.counters.cur = 0;
  a.conns.clear();
  a.setWeight(3);
  let seq = '';
  for (let i = 0; i < 8; i++) seq += pickName(pool);
  t.is([...seq].filter((c) => c === 'a').length, 6);
});

const leastConn = [
  { what: 'fewest connections wins', weights: [1, 1, 1], cur: [2, 0, 1], expect: 'b' },
  { what: 'per unit of weight', weights: [4, 1, 1], cur: [3, 1, 1], expect: 'a' },
  { what: 'heavier server takes more', weights: [2, 1], cur: [1, 1], expect: 'a' },
];
for (const row of leastConn) {
  test(`leastconn: ${row.what}`, (t) => {
    const pool = makeTestPool({ name: 'p', balance: 'leastconn', servers: servers(row.weights) });
    row.cur.forEach((n, i) => {
      for (let k = 0; k < n; k++) pool.servers[i]!.attach({ close() {}, bytesIn: 0, bytesOut: 0 });
    });
    t.is(pickName(pool), row.expect);
  });
}

test('leastconn: ties go round robin, and connections held keep the load even', (t) => {
  const pool = makeTestPool({ name: 'p', balance: 'leastconn', servers: servers([1, 1, 1]) });
  t.is(pickName(pool) + pickName(pool) + pickName(pool) + pickName(pool), 'abca');
  const held = makeTestPool({ name: 'p', balance: 'leastconn', servers: servers([2, 1, 1]) });
  for (let i = 0; i < 400; i++) {
    const s = held.select(ctx()) as Server;
    s.attach({ close() {}, bytesIn: 0, bytesOut: 0 });
  }
  t.deepEqual(
    held.servers.map((s) => s.counters.cur),
    [200, 100, 100],
  );
});

test('source: the same client IP lands on the same server; shares follow weights; a removed server moves only its clients', (t) => {
  const pool = makeTestPool({ name: 'p', balance: 'source', servers: servers([100, 80, 60]) });
  for (const ip of ['10.0.0.1', '192.168.7.33', '::1']) {
    const first = pickName(pool, ctx(ip));
    for (let i = 0; i < 50; i++) t.is(pickName(pool, ctx(ip)), first);
  }
  const n = 6000;
  const before = new Map<string, string>();
  const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
  for (let i = 0; i < n; i++) {
    const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    const s = pickName(pool, ctx(ip));
    before.set(ip, s);
    counts[s]!++;
  }
  t.true(Math.abs((counts.a! / n) * 100 - 41.67) < 3, `a ${counts.a}`);
  t.true(Math.abs((counts.b! / n) * 100 - 33.33) < 3, `b ${counts.b}`);
  t.true(Math.abs((counts.c! / n) * 100 - 25) < 3, `c ${counts.c}`);
  pool.server('c')!.setHealth('down', 'test');
  let moved = 0;
  for (const [ip, s] of before) {
    const now = pickName(pool, ctx(ip));
    if (s !== 'c' && now !== s) moved++;
  }
  t.is(moved, 0);
});

test('first: fills servers in declaration order up to max_connections, then reports full', (t) => {
  const pool = makeTestPool({ name: 'p', balance: 'first', servers: servers([1, 1, 1], { maxConnections: 2 }) });
  let seq = '';
  for (let i = 0; i < 6; i++) {
    const s = pool.select(ctx()) as Server;
    s.attach({ close() {}, bytesIn: 0, bytesOut: 0 });
    seq += s.name;
  }
  t.is(seq, 'aabbcc');
  t.is(pool.select(ctx()), 'full');
});

test('selection excludes servers that failed for this client and says when nothing is left', (t) => {
  const pool = makeTestPool({ name: 'p', servers: servers([1, 1]) });
  const a = pool.server('a')!;
  const b = pool.server('b')!;
  t.is(pool.select({ ...ctx(), exclude: [a] }), b);
  t.is(pool.select({ ...ctx(), exclude: [a, b] }), null);
});

test('real connections through the proxy follow the weights (100/80/60, 240 connections)', async (t) => {
  const backends = await Promise.all(['a', 'b', 'c'].map((n) => startNamed(t, n)));
  const rt = await startProxy(t, {
    pools: [
      {
        name: 'p',
        servers: backends.map((b, i) => ({ name: 'abc'[i]!, port: b.port, weight: [100, 80, 60][i]! })),
      },
    ],
  });
  const port = rt.port('p');
  const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
  for (let i = 0; i < 240; i += 24) {
    const batch = await Promise.all(
      Array.from({ length: 24 }, async () => {
        const s = await connectClient(t, port);
        const name = (await readBytes(s, 2)).toString().trim();
        s.destroy();
        return name;
      }),
    );
    for (const n of batch) counts[n]!++;
  }
  t.deepEqual(counts, { a: 100, b: 80, c: 60 });
});
