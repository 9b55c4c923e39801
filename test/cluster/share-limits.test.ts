import test from 'ava';
import { shareLimits } from '../../src/proxy/cluster/share-limits.ts';
import { makeConfig } from '../helpers/proxy.ts';

test('limits are split between workers, the shares adding up to the limit; 0 stays unlimited; never below 1', (t) => {
  const config = makeConfig({
    global: { maxConnections: 50_000 },
    pools: [{ name: 'p', servers: [{ name: 'a', port: 1, maxConnections: 10 }, { name: 'b', port: 2, maxConnections: 0 }, { name: 'c', port: 3, maxConnections: 2 }] }],
    frontends: [{ name: 'f', pool: 'p', maxConnections: 7 }],
  });
  const shares = [0, 1, 2].map((i) => shareLimits(config, i, 3));
  t.deepEqual(shares.map((c) => c.global.maxConnections), [16_667, 16_667, 16_666]);
  t.deepEqual(shares.map((c) => c.frontends[0]!.maxConnections), [3, 2, 2]);
  t.deepEqual(shares.map((c) => c.pools[0]!.servers[0]!.maxConnections), [4, 3, 3]);
  t.deepEqual(shares.map((c) => c.pools[0]!.servers[1]!.maxConnections), [0, 0, 0]);
  t.deepEqual(shares.map((c) => c.pools[0]!.servers[2]!.maxConnections), [1, 1, 1]);
  t.is(shareLimits(config, 0, 1), config, 'one worker: the configuration as it is');
  t.is(config.pools[0]!.servers[0]!.maxConnections, 10, 'the original is untouched');
});

test('global.workers: a whole number 1..64, default 1, errors with line:column', async (t) => {
  const { parseProxyConfig } = await import('../../src/config/proxy-schema.ts');
  const body = 'pools:\n  p:\n    servers: [{ name: a, address: "127.0.0.1:1" }]\nfrontends: [{ name: f, listen: "127.0.0.1:9", pool: p }]\n';
  t.is(parseProxyConfig('a.yaml', body).global.workers, 1);
  t.is(parseProxyConfig('a.yaml', `global:\n  workers: 4\n${body}`).global.workers, 4);
  for (const bad of ['0', '65', '2.5', 'two']) {
    const err = t.throws(() => parseProxyConfig('a.yaml', `global:\n  workers: ${bad}\n${body}`));
    t.regex(err!.message, /a\.yaml:2:12 global\.workers: must be a whole number 1\.\.64/);
  }
  // A key written without a value is a slip, not a request for the default.
  const empty = t.throws(() => parseProxyConfig('a.yaml', `global:\n  workers:\n  grace: ~\n${body}`));
  t.regex(empty!.message, /global\.workers: has no value/);
  t.regex(empty!.message, /global\.grace: has no value/);
});
