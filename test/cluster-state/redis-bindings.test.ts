/**
 * SPEC 9: two licproxy instances share source-affinity bindings through a real redis-server. A client whose license
 * port reaches instance A and whose token port reaches instance B at the same instant meets one server.
 */
import test from 'ava';
import type { Socket } from 'node:net';
import { LineClient, startLicd } from '../helpers/licd.ts';
import type { ConfigSpec } from '../helpers/proxy.ts';
import { waitFor } from '../helpers/wait.ts';
import { REDIS_SERVER, SKIP_REASON, firstLine, startInstance, startRedis, startSentinel, twoPortSpec } from './redis-support.ts';

const maybe = REDIS_SERVER === null ? test.skip : test.serial;
if (REDIS_SERVER === null) test('cluster-state bindings', (t) => {
  t.log(SKIP_REASON);
  t.pass();
});

/** Client i's own loopback address (127.1.x.y): one source IP per client. */
const ipOf = (i: number): string => `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`;

maybe('200 clients, license port on A and token port on B at the same instant: 0 split', async (t) => {
  const redis = await startRedis(t);
  const spec = await twoPortSpec(t);
  const a = await startInstance(t, spec(false), { redisUrl: redis.url, instance: 'lb1', timeout: 2_000 });
  const b = await startInstance(t, spec(true), { redisUrl: redis.url, instance: 'lb2', timeout: 2_000 });
  const keep: Socket[] = [];
  t.teardown(() => keep.forEach((s) => s.destroy()));
  const N = 200;
  const results = await Promise.all(
    Array.from({ length: N }, (_, i) =>
      Promise.all([firstLine(a.app.runtime.port('license'), ipOf(i), keep), firstLine(b.app.runtime.port('tokens'), ipOf(i), keep)]),
    ),
  );
  const split = results.filter(([lic, tok]) => lic.split('/')[0] !== tok.split('/')[0]);
  t.is(split.length, 0, `split clients: ${split.slice(0, 5).map((x) => x.join(' vs ')).join('; ')}`);
  t.true(results.some(([lic]) => lic.startsWith('s1')) && results.some(([lic]) => lic.startsWith('s2')), 'both servers took clients');
  // The bindings are in Redis, under this cluster's name.
  t.is((await redis.client.keys('licproxy:lic-lb:aff:lic:*')).length, N);
  t.is(a.shared.status().redis.errors, 0);
});

maybe('a licd pool bound by source in a cluster: checkouts through both instances reach one real licd', async (t) => {
  const redis = await startRedis(t);
  const licds = [await startLicd({ name: 'l1' }), await startLicd({ name: 'l2' })];
  t.teardown(() => Promise.all(licds.map((l) => l.stop())));
  const spec = (order: number[]): ConfigSpec => ({
    pools: [
      {
        name: 'lic',
        protocol: 'licd',
        ports: { license: 1, tokens: 1 },
        affinity: { by: 'source', ttl: 3_600_000, maxBindings: 1000 },
        servers: order.map((i) => ({ name: `l${i + 1}`, ports: { license: licds[i]!.ports.license, tokens: licds[i]!.ports.tokens } })),
      },
    ],
    frontends: [{ name: 'license', pool: 'lic', port: 'license' }],
  });
  const a = await startInstance(t, spec([0, 1]), { redisUrl: redis.url, instance: 'lb1', timeout: 2_000 });
  const b = await startInstance(t, spec([1, 0]), { redisUrl: redis.url, instance: 'lb2', timeout: 2_000 });
  for (let i = 1; i <= 6; i++) {
    const ip = `127.11.0.${i}`;
    const [x, y] = await Promise.all([LineClient.connect(a.app.runtime.port('license'), { localAddress: ip }), LineClient.connect(b.app.runtime.port('license'), { localAddress: ip })]);
    t.teardown(() => (x.destroy(), y.destroy()));
    const [hx, hy] = await Promise.all([x.request('HELLO user=u host=h'), y.request('HELLO user=u host=h')]);
    t.regex(hx, /^OK server=l[12] /);
    t.is(hx, hy, `${ip}: both instances' connections reached one licd`);
    t.regex(await x.request('CHECKOUT LS-DYNA'), /^GRANTED handle=l[12]\./);
  }
});

maybe('Redis found through Sentinel: bindings are shared the same way', async (t) => {
  const redis = await startRedis(t);
  const sentinel = await startSentinel(t, redis);
  const spec = await twoPortSpec(t);
  const via = { kind: 'sentinel' as const, sentinels: [{ host: '127.0.0.1', port: sentinel.port }], name: 'mymaster' };
  const a = await startInstance(t, spec(false), { redis: via, instance: 'lb1', timeout: 2_000 });
  const b = await startInstance(t, spec(true), { redis: via, instance: 'lb2', timeout: 2_000 });
  await waitFor(() => a.shared.status().redis.connected && b.shared.status().redis.connected, { timeout: 10_000, what: 'connected through Sentinel' });
  const keep: Socket[] = [];
  t.teardown(() => keep.forEach((s) => s.destroy()));
  for (let i = 1; i <= 10; i++) {
    const [l, k] = await Promise.all([firstLine(a.app.runtime.port('license'), `127.12.0.${i}`, keep), firstLine(b.app.runtime.port('tokens'), `127.12.0.${i}`, keep)]);
    t.is(l.split('/')[0], k.split('/')[0]);
  }
  t.is((await redis.client.keys('licproxy:lic-lb:aff:lic:127.12.*')).length, 10);
});
