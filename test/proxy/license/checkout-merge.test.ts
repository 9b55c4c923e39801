/**
 * With `global.workers`, checkouts are counted in the worker processes that hold the connections: the stats view
 * adds each worker's rows to the primary's, per server and feature; tcp pools carry no rows at all.
 */
import test from 'ava';
import { mergeSnapshots } from '../../../src/proxy/cluster/merge-snapshots.ts';
import { checkoutCountersOf } from '../../../src/proxy/license-session/checkout-counters.ts';
import { ProxyRuntime, type RuntimeSnapshot } from '../../../src/proxy/runtime.ts';
import { makeConfig } from '../../helpers/proxy.ts';

test('checkout rows of the workers are added up per server and feature', async (t) => {
  const rt = new ProxyRuntime(
    makeConfig({
      pools: [
        { name: 'lic', route: 'feature', servers: [{ name: 'a', port: 1 }] },
        { name: 'plain', servers: [{ name: 'a', port: 1 }] },
      ],
    }),
    { listen: false },
  );
  await rt.start();
  t.teardown(() => rt.stop(0));
  const primary = rt.snapshot();
  t.deepEqual(primary.pools[0]!.checkouts, [], 'a licd pool: rows, none yet');
  t.is(primary.pools[1]!.checkouts, undefined, 'a tcp pool: no rows');
  const counters = checkoutCountersOf(rt.pool('lic')!);
  counters.add('a', 'F', 'granted');
  counters.add('a', 'F', 'retried_saved');
  const w1 = structuredClone(rt.snapshot());
  counters.add('a', 'G', 'denied');
  const w2: RuntimeSnapshot = structuredClone(rt.snapshot());
  const m = mergeSnapshots(primary, [w1, w2]);
  t.deepEqual(
    m.pools[0]!.checkouts!.map((r) => [r.server, r.feature, r.granted, r.denied, r.retriedSaved, r.queueWaits]),
    [
      ['a', 'F', 2, 0, 2, 0],
      ['a', 'G', 0, 1, 0, 0],
    ],
  );
  t.is(m.pools[1]!.checkouts, undefined);
});
