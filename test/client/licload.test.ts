import test from 'ava';
import { openIdle, runLoad } from '../../bench/licload.ts';
import { connect } from '../../src/client/license-client.ts';
import { findFeature, parseLmstat } from '../../src/client/lmstat-parser.ts';
import { startLicd } from '../helpers/licd.ts';
import { settles, waitFor } from '../helpers/wait.ts';

async function inUse(port: number): Promise<number> {
  const c = await connect('127.0.0.1', port);
  try {
    return findFeature(parseLmstat(await c.status()), 'LS-DYNA')!.inUse;
  } finally {
    c.destroy();
  }
}

test('short mode: bounded by the transaction count, no errors, every seat returned', async (t) => {
  const d = await startLicd({ features: [{ name: 'LS-DYNA', count: 100 }] });
  t.teardown(d.stop);
  const target = { host: '127.0.0.1', port: d.ports.license };
  const r = await runLoad({ target, mode: 'short', concurrency: 4, durationMs: 20_000, transactions: 200 });
  t.is(r.errors, 0, r.errorSamples.join('; '));
  t.is(r.transactions, 200);
  t.is(r.latencyUs.count, 200);
  t.true(r.latencyUs.p50 > 0 && r.latencyUs.p50 <= r.latencyUs.p99 && r.latencyUs.p99 <= r.latencyUs.max);
  t.true(r.txPerSec > 0);
  await waitFor(async () => (await inUse(d.ports.license)) === 0, { what: 'all seats back' });
});

test('persistent modes: bounded by duration; denials counted, not errors', async (t) => {
  const d = await startLicd({ features: [{ name: 'LS-DYNA', count: 2 }] });
  t.teardown(d.stop);
  const target = { host: '127.0.0.1', port: d.ports.license };
  // Bounded by its 300 ms: the deadline only catches a load that never stops.
  const hb = await settles(runLoad({ target, mode: 'persistent', op: 'heartbeat', concurrency: 3, durationMs: 300 }), { timeout: 60_000, what: 'the load to end' });
  t.is(hb.errors, 0, hb.errorSamples.join('; '));
  t.true(hb.transactions > 0);

  // 3 connections on 2 seats: some CHECKOUTs are DENIED, and that is load, not failure.
  const co = await runLoad({ target, mode: 'persistent', op: 'checkout', concurrency: 3, durationMs: 300, transactions: 300 });
  t.is(co.errors, 0, co.errorSamples.join('; '));
  t.true(co.transactions > 0);
  t.true(co.transactions + co.denied <= 300);
});

test('openIdle holds n sessions (with a seat each when asked) until closed', async (t) => {
  const d = await startLicd({ features: [{ name: 'LS-DYNA', count: 10 }] });
  t.teardown(d.stop);
  const target = { host: '127.0.0.1', port: d.ports.license };
  const idle = await openIdle(target, 6, { feature: 'LS-DYNA', batch: 4 });
  t.teardown(() => idle.close());
  t.is(idle.open, 6);
  t.is(idle.failed, 0);
  t.is(await inUse(d.ports.license), 6);
  await idle.close();
  await waitFor(async () => (await inUse(d.ports.license)) === 0, { what: 'seats freed' });
});

test('a dead target gives errors, not a hang', async (t) => {
  const d = await startLicd();
  const port = d.ports.license;
  await d.stop();
  const r = await runLoad({ target: { host: '127.0.0.1', port }, mode: 'short', concurrency: 2, durationMs: 200 });
  t.is(r.transactions, 0);
  t.true(r.errors > 0);
  t.regex(r.errorSamples[0]!, /ECONNREFUSED/);
});
