/**
 * A client that gives up on its CHECKOUT (closes) while the master that granted and replicated it is stopped: the
 * proxy delivers the kept lines (HELLO + CHECKOUT req=...) to the new master once one is known and closes, so the
 * replicated session is re-attached by its req and freed at once, not after `redundancy.resume_window` (60 s here).
 * A licd triad of real processes; a relay in front of the master swallows its GRANTED, then the master is stopped
 * (SIGSTOP) and the client closes, so the order is deterministic.
 */
import test from 'ava';
import { LineClient } from '../../helpers/licd.ts';
import { LicdCluster } from '../../helpers/licd-cluster.ts';
import { waitFor } from '../../helpers/wait.ts';
import { balancer } from './support.ts';
import { GrantEater } from './grant-eater.ts';

test('a client that gives up on a CHECKOUT its stopped master granted: the proxy frees the replicated seat on the new master', async (t) => {
  t.timeout(120_000);
  const set = await LicdCluster.start({ mode: 'triad', features: [{ name: 'F', count: 10 }], heartbeatTimeout: '5m', resumeWindow: '60s' });
  t.teardown(async () => {
    if (!t.passed) t.log(set.dump());
    set.cont(0);
    await set.close();
  });
  t.is(await set.waitSynced(), 0);
  const [a, b, c] = set.members;
  const eater = new GrantEater(a!.ports.license);
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
    timeouts: { queue: 30s, connect: 1s }
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
  t.regex(await client.next(30_000), /^OK server=a proto=1$/);
  await waitFor(() => eater.eaten !== null, { timeout: 15_000, what: 'a granted (and replicated) F' });
  await waitFor(async () => (await set.status(1))?.features[0]?.inUse === 1, { timeout: 10_000, what: 'the seat replicated to b' });
  set.stop(0);
  // The client library's answer timeout: it gives up and closes.
  client.destroy();

  const m = await set.waitMaster({ not: 0, timeout: 30_000 });
  // resume_window is 60 s: a seat freed within 15 s was freed by the proxy's delivery, not by the window.
  await waitFor(async () => (await set.status(m))?.features[0]?.inUse === 0, { timeout: 15_000, interval: 200, what: 'the replicated seat freed' });
  t.pass();
});
