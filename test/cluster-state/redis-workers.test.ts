/**
 * SPEC 9 with `global.workers`: the primary talks to Redis, its workers ask the primary as without a cluster.
 * Instance A is `licproxy run` with two workers, instance B an in-process one; a client's license port reaching A
 * and token port reaching B at the same instant meets one server.
 */
import test from 'ava';
import type { Socket } from 'node:net';
import { startNamed } from '../helpers/backend.ts';
import { runCluster } from '../cluster/support.ts';
import { REDIS_SERVER, SKIP_REASON, firstLine, startInstance, startRedis } from './redis-support.ts';

const maybe = REDIS_SERVER === null ? test.skip : test.serial;
if (REDIS_SERVER === null) {
  test('cluster-state with workers', (t) => {
    t.log(SKIP_REASON);
    t.pass();
  });
}

maybe('workers: 100 clients, license port on A (2 workers) and token port on B at once: 0 split', async (t) => {
  const redis = await startRedis(t);
  const ports: Record<string, { license: number; tokens: number }> = {};
  for (const n of ['s1', 's2']) ports[n] = { license: (await startNamed(t, `${n}/license`)).port, tokens: (await startNamed(t, `${n}/tokens`)).port };
  const a = await runCluster(
    t,
    (tokenFile) => `
global:
  workers: 2
  grace: 1s
stats:
  listen: 127.0.0.1:0
  admin: { token_file: ${tokenFile} }
cluster:
  name: lic-lb
  instance: lb1
  redis: ${redis.url}
  timeout: 2s
pools:
  lic:
    ports: { license: 1, tokens: 2 }
    affinity: { by: source, ttl: 1h }
    check: { type: none }
    servers:
      - { name: s1, host: 127.0.0.1, ports: { license: ${ports.s1!.license}, tokens: ${ports.s1!.tokens} } }
      - { name: s2, host: 127.0.0.1, ports: { license: ${ports.s2!.license}, tokens: ${ports.s2!.tokens} } }
frontends:
  - { name: license, listen: 127.0.0.1:0, pool: lic, port: license }
`,
  );
  const b = await startInstance(
    t,
    {
      pools: [{ name: 'lic', ports: { license: 1, tokens: 1 }, affinity: { by: 'source', ttl: 3_600_000, maxBindings: 100_000 }, servers: ['s2', 's1'].map((n) => ({ name: n, ports: ports[n]! })) }],
      frontends: [{ name: 'tokens', pool: 'lic', port: 'tokens' }],
    },
    { redisUrl: redis.url, instance: 'lb2', timeout: 2_000 },
  );
  const lic = await a.port('license');
  const tok = b.app.runtime.port('tokens');
  const keep: Socket[] = [];
  t.teardown(() => keep.forEach((s) => s.destroy()));
  const ipOf = (i: number): string => `127.10.${Math.floor(i / 250)}.${(i % 250) + 1}`;
  const results = await Promise.all(Array.from({ length: 100 }, (_, i) => Promise.all([firstLine(lic, ipOf(i), keep), firstLine(tok, ipOf(i), keep)])));
  const split = results.filter(([l, k]) => l.split('/')[0] !== k.split('/')[0]);
  t.is(split.length, 0, split.slice(0, 5).map((x) => x.join(' vs ')).join('; '));
  t.true(a.lines().some((l) => typeof l.msg === 'string' && (l.msg as string).includes('cluster: connected to Redis')));
  // A client's second connection through A's workers follows the binding (held in the primary's table).
  t.is((await firstLine(lic, ipOf(0), keep)).split('/')[0], results[0]![0].split('/')[0]);
});
