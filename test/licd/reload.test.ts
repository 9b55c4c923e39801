import test from 'ava';
import { parseLicdConfig } from '../../src/config/licd-config.ts';
import { LineClient, licdYaml, startLicd, type FeatureSpec } from '../helpers/licd.ts';

const config = (features: FeatureSpec[], extra = {}) => parseLicdConfig(licdYaml({ features, ...extra }));

test('reload in place: a raised count serves the queue, a removed feature keeps its holders, a too-large waiter is denied', async (t) => {
  const licd = await startLicd({ features: [{ name: 'A', count: 1 }, { name: 'B', count: 2 }] });
  t.teardown(licd.stop);
  const c = await LineClient.connect(licd.ports.license);
  const w1 = await LineClient.connect(licd.ports.license);
  const w2 = await LineClient.connect(licd.ports.license);
  t.teardown(() => [c, w1, w2].forEach((x) => x.destroy()));
  t.regex(await c.request('CHECKOUT A'), /^GRANTED/);
  const hb = /handle=(\S+)/.exec(await c.request('CHECKOUT B count=2'))![1]!;
  t.is(await w1.request('CHECKOUT A queue=1'), 'QUEUED position=1');
  t.is(await w2.request('CHECKOUT B count=2 queue=1'), 'QUEUED position=1');

  licd.server.reload(config([{ name: 'A', count: 2 }, { name: 'B', count: 1 }, { name: 'C', count: 1 }]));
  t.regex(await w1.next(), /^GRANTED handle=\S+ feature=A count=1$/, 'the raised count serves the queue at once');
  t.is(await w2.next(), 'DENIED feature=B reason=COUNT available=0', 'can never be served now');
  t.regex(await c.request('CHECKOUT C'), /^GRANTED/);
  t.deepEqual(licd.server.status().features.map((f) => [f.name, f.issued, f.inUse]), [['A', 2, 2], ['B', 1, 2], ['C', 1, 1]]);

  licd.server.reload(config([{ name: 'A', count: 2 }, { name: 'C', count: 1 }]));
  t.is(await c.request('CHECKOUT B'), 'ERR UNKNOWN_FEATURE');
  t.deepEqual(licd.server.status().features.map((f) => f.name), ['A', 'C']);
  // Brought back: the seats still held count against it.
  licd.server.reload(config([{ name: 'B', count: 2 }]));
  t.is(licd.server.status().features[0]!.inUse, 2);
  t.is(await c.request('CHECKOUT B'), 'DENIED feature=B reason=EXHAUSTED available=0');
  t.is(await c.request(`CHECKIN ${hb}`), 'OK');
  t.is(licd.server.status().features[0]!.inUse, 0);
});

test('reload applies heartbeat_timeout and allow to the running daemon', async (t) => {
  const licd = await startLicd({ features: [{ name: 'A', count: 1 }] });
  t.teardown(licd.stop);
  const c = await LineClient.connect(licd.ports.license);
  t.teardown(() => c.destroy());
  t.regex(await c.request('CHECKOUT A'), /^GRANTED/);
  licd.server.reload(config([{ name: 'A', count: 1 }], { heartbeatTimeout: '200ms', allow: ['10.0.0.0/8'] }));
  await c.closed; // silent for 200ms
  t.is(licd.server.status().features[0]!.inUse, 0);
  const denied = await LineClient.connect(licd.ports.license);
  t.teardown(() => denied.destroy());
  t.is(await denied.next(), 'ERR NOT_ALLOWED');
});
