import test from 'ava';
import { mergeSnapshots } from '../../src/proxy/cluster/merge-snapshots.ts';
import { ProxyRuntime, type RuntimeSnapshot } from '../../src/proxy/runtime.ts';
import { makeConfig } from '../helpers/proxy.ts';

function snapshotOf(rt: ProxyRuntime, f: (s: RuntimeSnapshot) => void): RuntimeSnapshot {
  const s = structuredClone(rt.snapshot());
  f(s);
  return s;
}

test('the stats view: states from the primary, connection counters added up from the workers', async (t) => {
  const rt = new ProxyRuntime(makeConfig({ pools: [{ name: 'p', servers: [{ name: 'a', port: 1 }] }] }), { listen: false });
  await rt.start();
  t.teardown(() => rt.stop(0));
  rt.server('p', 'a')!.counters.failedChecks = 5;
  const primary = rt.snapshot();
  const w = (n: number): RuntimeSnapshot =>
    snapshotOf(rt, (s) => {
      s.connections.current = n;
      s.frontends[0]!.accepting = true;
      s.frontends[0]!.address = '127.0.0.1:4000';
      Object.assign(s.frontends[0]!.counters, { total: 10 * n, current: n, bytesIn: 100 * n });
      Object.assign(s.pools[0]!.counters, { noServer: n, failovers: 99 });
      Object.assign(s.pools[0]!.servers[0]!.counters, { cur: n, total: 10 * n, connectErrors: n, failedChecks: 77 });
    });
  const m = mergeSnapshots(primary, [w(1), w(2)]);
  t.is(m.connections.current, 3);
  t.is(m.frontends[0]!.counters.total, 30);
  t.is(m.frontends[0]!.counters.bytesIn, 300);
  t.true(m.frontends[0]!.accepting);
  t.is(m.frontends[0]!.address, '127.0.0.1:4000');
  t.is(m.pools[0]!.counters.noServer, 3);
  t.is(m.pools[0]!.counters.failovers, 0, 'failovers are the primary\'s');
  const s = m.pools[0]!.servers[0]!.counters;
  t.is(s.cur, 3);
  t.is(s.total, 30);
  t.is(s.connectErrors, 3);
  t.is(s.failedChecks, 5, 'checks are the primary\'s');
  t.false(mergeSnapshots(primary, []).frontends[0]!.accepting, 'no worker: not accepting');
});
