/**
 * Idempotent replay (PROTOCOL.md "CHECKOUT", `req=`): through a `mode: master` licd pool, a CHECKOUT that the
 * master granted and replicated, but which died before its GRANTED reached the balancer, is replayed on the new
 * master and gets the same seat (same handle), not a second one. The balancer adds the request id itself: the
 * client here sends a bare `CHECKOUT F`. A licd triad of real processes; a relay in front of the master swallows
 * the GRANTED and kills the master before cutting the connection, so the loss is deterministic.
 */
import test from 'ava';
import { LineClient } from '../../helpers/licd.ts';
import { LicdCluster } from '../../helpers/licd-cluster.ts';
import { waitFor } from '../../helpers/wait.ts';
import { balancer } from './support.ts';
import { GrantEater } from './grant-eater.ts';
import { MAX_LINE_BYTES } from '../../../src/common/line-decoder.ts';
import { classifyClientLine, withRequestId } from '../../../src/proxy/license-session/licd-lines.ts';

test('master dies after granting, before its GRANTED reaches the balancer: the replayed CHECKOUT reuses the seat', async (t) => {
  t.timeout(120_000);
  const set = await LicdCluster.start({ mode: 'triad', features: [{ name: 'F', count: 10 }], heartbeatTimeout: '5m', resumeWindow: '5m' });
  t.teardown(async () => {
    if (!t.passed) t.log(set.dump());
    await set.close();
  });
  t.is(await set.waitSynced(), 0);
  const [a, b, c] = set.members;
  const eater = new GrantEater(a!.ports.license, (client, upstream) => {
    // The master dies with the grant replicated (GRANTED is only sent once a follower has it); then the balancer's
    // connection is cut, before any useful answer.
    void set.kill(0).then(() => {
      client.destroy();
      upstream.destroy();
    });
  });
  await eater.listen();
  t.teardown(() => eater.close());
  const app = await balancer(
    t,
    `
global: { log_level: silent }
pools:
  triad:
    mode: master
    protocol: licd
    timeouts: { queue: 30s }
    check: { type: lmstat, interval: 1s, fast_interval: 250ms, down_interval: 2s, timeout: 500ms, rise: 1, fall: 2 }
    servers:
      - { name: ${a!.name}, address: 127.0.0.1:${eater.port} }
      - { name: ${b!.name}, address: 127.0.0.1:${b!.ports.license} }
      - { name: ${c!.name}, address: 127.0.0.1:${c!.ports.license} }
frontends:
  - { name: triad, listen: 127.0.0.1:0, pool: triad }
`,
  );
  await waitFor(() => app.runtime.pool('triad')!.snapshot().activeServer === 'a', { timeout: 15_000, what: 'a the master' });

  const client = await LineClient.connect(app.runtime.port('triad'));
  t.teardown(() => client.destroy());
  client.send('HELLO user=u host=h');
  client.send('CHECKOUT F');
  t.regex(await client.next(30_000), /^OK server=[abc] proto=1$/);
  const answer = await client.next(30_000);
  const eaten = eater.eaten;
  t.truthy(eaten, 'the master granted, and its GRANTED was lost with it');
  t.is(answer, eaten!, 'the replay on the new master answered the same grant (same handle)');
  t.false(client.isClosed);
  const m = await set.waitMaster({ not: 0 });
  t.is((await set.status(m))!.features[0]!.inUse, 1, 'one seat, not two');
  const handle = /handle=(\S+)/.exec(answer)![1]!;
  t.is(await client.request(`CHECKIN ${handle}`), 'OK', 'the client holds it on the new master');
  t.is((await set.status(m))!.features[0]!.inUse, 0);
});

test('withRequestId: appends one 128-bit req= before the line ending, keeps \\r\\n, never past the licd line limit', (t) => {
  const lf = withRequestId(Buffer.from('CHECKOUT F count=2\n')).toString();
  t.regex(lf, /^CHECKOUT F count=2 req=[0-9a-f]{32}\n$/);
  t.regex(withRequestId(Buffer.from('CHECKOUT F\r\n')).toString(), /^CHECKOUT F req=[0-9a-f]{32}\r\n$/);
  t.not(withRequestId(Buffer.from('CHECKOUT F\n')).toString(), withRequestId(Buffer.from('CHECKOUT F\n')).toString(), 'random per line');
  const long = Buffer.from(`CHECKOUT ${'F'.repeat(MAX_LINE_BYTES - 20)}\n`);
  t.is(withRequestId(long), long);
  t.true(classifyClientLine('CHECKOUT F req=0123456789abcdef').hasReq, 'a client id is kept as the client sent it');
  t.false(classifyClientLine('CHECKOUT F').hasReq);
});
