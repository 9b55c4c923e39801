/**
 * How fast a master pool (`protocol: licd`) learns the next master, without waiting for its checks' intervals
 * (issue 14, "Failover nobody sees"): a member's `ERR NOT_MASTER master=<name>` makes the balancer check both
 * members at once, and a member whose check reports (MASTER) is UP at once, even one held DOWN with `rise` to go;
 * while no member is master, every member is checked at `fast_interval`. The checks here run once a minute (and
 * `rise` is 5), so only those paths can explain a grant within the client's wait.
 */
import test from 'ava';
import { LineClient } from '../../helpers/licd.ts';
import { LicdCluster } from '../../helpers/licd-cluster.ts';
import { waitFor } from '../../helpers/wait.ts';
import { balancer } from './support.ts';

const SEATS = [{ name: 'F', count: 100 }];

async function triad(t: Parameters<typeof balancer>[0]) {
  const set = await LicdCluster.start({ mode: 'triad', features: SEATS, heartbeatTimeout: '5m' });
  t.teardown(async () => {
    if (!t.passed) t.log(set.dump());
    await set.close();
  });
  t.is(await set.waitSynced(), 0);
  return set;
}

function proxyYaml(set: LicdCluster, check: string): string {
  return `
global: { log_level: silent }
pools:
  triad:
    mode: master
    protocol: licd
    timeouts: { queue: 60s }
    check: ${check}
    servers:
${set.members.map((m) => `      - { name: ${m.name}, address: 127.0.0.1:${m.ports.license} }`).join('\n')}
frontends:
  - { name: triad, listen: 127.0.0.1:0, pool: triad }
`;
}

/** HELLO and CHECKOUT on a fresh connection through the balancer; the CHECKOUT's answer, or why there was none. */
async function checkout(port: number, waitMs: number): Promise<string> {
  const c = await LineClient.connect(port);
  try {
    c.send('HELLO user=u host=h');
    c.send('CHECKOUT F');
    await c.next(waitMs);
    return await c.next(waitMs);
  } catch (err) {
    return `no answer: ${String(err)}`;
  } finally {
    c.destroy();
  }
}

test('ERR NOT_MASTER master=a, with a held DOWN by the balancer: the replayed CHECKOUT is granted by a without waiting for a check', async (t) => {
  t.timeout(120_000);
  const set = await triad(t);
  // a dies; b serves. The balancer starts now: a DOWN at its first check, b the master.
  await set.kill(0);
  t.is(await set.waitMaster({ not: 0 }), 1);
  // timeout 2s: b's one status check must pass on a loaded machine (fall 1, and the next check is a minute away).
  const app = await balancer(t, proxyYaml(set, '{ type: lmstat, interval: 60s, fast_interval: 60s, down_interval: 60s, timeout: 2s, rise: 5, fall: 1 }'), { waitUp: false });
  const pool = app.runtime.pool('triad')!;
  const server = (name: string) => pool.servers.find((s) => s.name === name)!;
  await waitFor(() => pool.snapshot().activeServer === 'b' && server('a').health === 'down', { timeout: 15_000, what: 'b the master, a DOWN' });
  // a comes back and takes over (the lowest order); the balancer's next checks are a minute away.
  await set.restart(0);
  t.is(await set.waitSynced(), 0);
  t.is(pool.snapshot().activeServer, 'b', 'the balancer still believes b serves');
  t.is(server('a').health, 'down', 'and holds a DOWN (rise 5, down_interval 60s)');

  const answer = await checkout(app.runtime.port('triad'), 20_000);
  t.regex(answer, /^GRANTED handle=a\./, 'b refused NOT_MASTER master=a; the balancer checked a at once and replayed there');
  t.is(server('a').health, 'up', 'a reported (MASTER): UP at once, rise notwithstanding');
  t.is(pool.snapshot().activeServer, 'a', 'new clients go to a');
  t.regex(await checkout(app.runtime.port('triad'), 20_000), /^GRANTED handle=a\./);
});

test('master killed while the checks run once a minute: the members are checked at fast_interval until one reports (MASTER)', async (t) => {
  t.timeout(120_000);
  const set = await triad(t);
  const app = await balancer(t, proxyYaml(set, '{ type: lmstat, interval: 60s, fast_interval: 200ms, down_interval: 60s, timeout: 500ms, rise: 1, fall: 1 }'));
  const pool = app.runtime.pool('triad')!;
  await waitFor(() => pool.snapshot().activeServer === 'a', { timeout: 15_000, what: 'a the master' });
  await set.kill(0);
  // The first client finds a dead (connect refused): no master; b and c are a minute from their next check.
  const answer = await checkout(app.runtime.port('triad'), 20_000);
  t.regex(answer, /^GRANTED handle=[bc]\./, 'granted by the new master, found by the hurried checks');
  t.regex(pool.snapshot().activeServer ?? '', /^[bc]$/);
});

test('master frozen (SIGSTOP) with a CHECKOUT unanswered: it is replayed on the new master as soon as the balancer routes there', async (t) => {
  t.timeout(120_000);
  const set = await triad(t);
  const app = await balancer(t, proxyYaml(set, '{ type: lmstat, interval: 300ms, fast_interval: 100ms, down_interval: 300ms, timeout: 300ms, rise: 1, fall: 1 }'));
  const pool = app.runtime.pool('triad')!;
  await waitFor(() => pool.snapshot().activeServer === 'a', { timeout: 15_000, what: 'a the master' });
  const c = await LineClient.connect(app.runtime.port('triad'));
  t.teardown(() => c.destroy());
  t.is(await c.request('HELLO user=u host=h'), 'OK server=a proto=1');
  set.stop(0);
  t.teardown(() => set.cont(0));
  c.send('CHECKOUT F');
  // a stays stopped: it can neither answer nor close this connection. Only the balancer moving it can.
  await waitFor(() => /^[bc]$/.test(pool.snapshot().activeServer ?? ''), { timeout: 30_000, what: 'a new master at the balancer' });
  t.regex(await c.next(20_000), /^GRANTED handle=[bc]\./, 'the CHECKOUT left the frozen master for the new one');
  t.is(set.members[0]!.state, 'stopped');
  t.is(await c.request('HEARTBEAT'), 'OK');
});
