/**
 * Failover nobody sees (issue 14, SPEC 8.2 with `mode: master`): through a master pool with `protocol: licd`, a
 * client whose member died (or stopped serving) before answering anything useful is replayed on the new master,
 * and new clients wait for a master instead of failing. A licd triad of real processes; the client sees answers
 * only, never a closed connection.
 */
import test from 'ava';
import { LineClient } from '../../helpers/licd.ts';
import { LicdCluster } from '../../helpers/licd-cluster.ts';
import { waitFor } from '../../helpers/wait.ts';
import { checkoutCountersOf } from '../../../src/proxy/license-session/checkout-counters.ts';
import { balancer } from './support.ts';
import { LicenseClient } from '../../../src/client/license-client.ts';

const SEATS = [{ name: 'F', count: 1_000 }];

async function triadBehindProxy(t: Parameters<typeof balancer>[0], queue = '30s', protocol: 'licd' | 'tcp' = 'licd') {
  const set = await LicdCluster.start({ mode: 'triad', features: SEATS, heartbeatTimeout: '5m' });
  t.teardown(async () => {
    if (!t.passed) t.log(set.dump());
    await set.close();
  });
  t.is(await set.waitSynced(), 0);
  const [a, b, c] = set.members;
  const app = await balancer(
    t,
    `
global: { log_level: silent }
pools:
  triad:
    mode: master
    protocol: ${protocol}
    timeouts: { queue: ${queue} }
    check: { type: lmstat, interval: 1s, fast_interval: 250ms, down_interval: 2s, timeout: 500ms, rise: 1, fall: 2 }
    servers:
      - { name: ${a!.name}, address: 127.0.0.1:${a!.ports.license} }
      - { name: ${b!.name}, address: 127.0.0.1:${b!.ports.license} }
      - { name: ${c!.name}, address: 127.0.0.1:${c!.ports.license} }
frontends:
  - { name: triad, listen: 127.0.0.1:0, pool: triad }
`,
  );
  await waitFor(() => app.runtime.pool('triad')!.snapshot().activeServer === 'a', { timeout: 15_000, what: 'a the master' });
  return { set, app, port: app.runtime.port('triad') };
}

test('master killed: a client it had not answered yet, and clients arriving meanwhile, are all granted by the new master', async (t) => {
  t.timeout(120_000);
  const { set, app, port } = await triadBehindProxy(t);
  const held = await LineClient.connect(port);
  t.teardown(() => held.destroy());
  t.is(await held.request('HELLO user=held host=h'), 'OK server=a proto=1');
  t.regex(await held.request('CHECKOUT F'), /^GRANTED handle=a\./, 'granted before the kill: this one is the client library\'s to RESUME');

  const waiting = await LineClient.connect(port);
  t.teardown(() => waiting.destroy());
  t.is(await waiting.request('HELLO user=w host=h'), 'OK server=a proto=1');

  await set.kill(0);
  // Clients that arrive while the balancer still routes to a, then while no master is known, then after.
  const answers: Array<Promise<string>> = [];
  const clients: LineClient[] = [];
  const newClient = async (i: number) => {
    const c = await LineClient.connect(port);
    clients.push(c);
    c.send(`HELLO user=n${i} host=h`);
    c.send('CHECKOUT F');
    const hello = await c.next(30_000);
    return `${hello} | ${await c.next(30_000)}`;
  };
  for (let i = 0; i < 10; i++) answers.push(newClient(i));
  // The client whose server died before answering its CHECKOUT (sent after the kill).
  waiting.send('CHECKOUT F');
  const waited = await waiting.next(30_000);
  t.regex(waited, /^GRANTED handle=[bc]\./, 'the unanswered CHECKOUT was replayed on the new master');
  for (const a of await Promise.all(answers)) t.regex(a, /^OK server=[abc] proto=1 \| GRANTED handle=[bc]\./);
  for (const c of clients) t.false(c.isClosed);
  t.false(waiting.isClosed);
  t.is(await waiting.request('HEARTBEAT'), 'OK', 'the replayed connection is plain forwarding to the new master');
  const master = (await waiting.request('STATUS json').then((l) => JSON.parse(l) as { server: string })).server;
  t.true(master === 'b' || master === 'c');
  for (const c of clients) c.destroy();
  const rows = checkoutCountersOf(app.runtime.pool('triad')!).rows();
  t.is(rows.filter((r) => r.server !== 'a').reduce((n, r) => n + r.granted, 0), 11);
  t.log(`queue waits: ${rows.reduce((n, r) => n + r.queueWaits, 0)}`);
});

test('handover back to a returning primary: ERR NOT_MASTER answers are followed, never shown', async (t) => {
  t.timeout(120_000);
  const { set, app, port } = await triadBehindProxy(t);
  await set.kill(0);
  await waitFor(() => ['b', 'c'].includes(app.runtime.pool('triad')!.snapshot().activeServer ?? ''), { timeout: 20_000, what: 'a new master at the proxy' });
  const restarted = set.restart(0);
  // Checkouts all through the handover: each gets GRANTED (from whichever member serves), none an error or a close.
  const results: string[] = [];
  const deadline = Date.now() + 40_000;
  let backOnA = 0;
  while (Date.now() < deadline && backOnA < 10) {
    const c = await LineClient.connect(port);
    try {
      c.send('HELLO user=x host=h');
      c.send('CHECKOUT F');
      await c.next(30_000);
      const answer = await c.next(30_000);
      results.push(answer);
      if (answer.startsWith('GRANTED handle=a.')) backOnA++;
    } finally {
      c.destroy();
    }
  }
  await restarted;
  t.true(backOnA >= 10, 'a took back');
  const bad = results.filter((r) => !r.startsWith('GRANTED'));
  t.deepEqual(bad, [], `${results.length} checkouts during the handover`);
});

test('no master at all: a new client waits for one, and no longer than timeouts.queue', async (t) => {
  t.timeout(120_000);
  const { set, app, port } = await triadBehindProxy(t, '2s');
  await Promise.all([set.kill(1), set.kill(2)]);
  // a alone has no quorum: it stops serving and reports no MASTER.
  await waitFor(() => app.runtime.pool('triad')!.snapshot().activeServer === null, { timeout: 20_000, what: 'no master at the proxy' });
  const c = await LineClient.connect(port);
  t.teardown(() => c.destroy());
  const started = Date.now();
  c.send('HELLO user=w host=h');
  await c.closed;
  const waited = Date.now() - started;
  t.log(`closed after ${waited}ms without a master (timeouts.queue 2s)`);
  const rows = checkoutCountersOf(app.runtime.pool('triad')!).rows();
  t.is(rows.reduce((n, r) => n + r.granted, 0), 0);
  t.is(app.runtime.pool('triad')!.counters.queueTimeouts, 1, 'it waited in the pool queue for a master, then timed out');
  t.is(app.runtime.pool('triad')!.counters.noServer, 0, 'not closed at once for want of a server');
});

/**
 * Held licenses across master losses: clients of the client library (resume on) that hold a seat reconnect through
 * the proxy and RESUME their handle on whichever member serves. Each of them must still hold its own handle after
 * the master was killed and restarted (and took back), a stretch without any master, and another kill, with either
 * protocol. With `protocol: licd` the stretch without a master used to lose every handle: the attempts the clients
 * abandoned waited in the pool queue and were replayed later (RESUME, then the client's FIN), taking each handle
 * from its live connection and freeing the seat.
 */
for (const protocol of ['licd', 'tcp'] as const) {
  test(`protocol ${protocol}: held clients keep their handles through master kills and a stretch without a master`, async (t) => {
    t.timeout(180_000);
    const { set, port } = await triadBehindProxy(t, '30s', protocol);
    const HELD = 12;
    const holders: LicenseClient[] = [];
    const granted: string[] = [];
    const resumes: number[] = [];
    const lost: string[] = [];
    const attempts: number[] = [];
    t.teardown(() => holders.forEach((c) => c.destroy()));
    for (let i = 0; i < HELD; i++) {
      const c = await LicenseClient.connect('127.0.0.1', port, { timeout: 5_000, resume: { giveUpAfter: 60_000 } });
      holders.push(c);
      resumes.push(0);
      attempts.push(0);
      c.on('reconnecting', () => attempts[i]!++);
      c.on('resumed', (r: { lost: unknown[] }) => {
        resumes[i]!++;
        if (r.lost.length > 0) lost.push(`h${i}: ${JSON.stringify(r.lost)}`);
      });
      c.on('lost', (err: Error) => lost.push(`h${i} gave up: ${err.message}`));
      await c.hello('held', `h${i}`);
      granted.push((await c.checkout('F')).handle);
      c.startHeartbeat(300, () => {});
    }
    // Kill the master, restart it; kill the two others (no quorum: no master while the clients make several
    // resume attempts, each abandoned after 1 s, some of them waiting in the proxy's queue), restart them; kill the
    // master again.
    const faults = ['master', 'others', 'master'] as const;
    for (let round = 1; round <= faults.length; round++) {
      const m = await set.waitMaster({ timeout: 20_000 });
      if (faults[round - 1] === 'master') {
        await set.kill(m);
        await waitFor(() => resumes.every((n) => n >= round) && holders.every((c) => !c.resuming), {
          timeout: 60_000,
          what: `every held client resumed after kill ${round} (${resumes.join(' ')}; lost: ${lost.join('; ')})`,
        });
        await set.restart(m);
      } else {
        const others = [0, 1, 2].filter((i) => i !== m);
        const before = attempts.slice();
        await Promise.all(others.map((i) => set.kill(i)));
        await waitFor(() => attempts.every((n, i) => n >= before[i]! + 3), { timeout: 60_000, what: '3 resume attempts of every held client without a master' });
        for (const i of others) await set.restart(i);
      }
      t.is(await set.waitSynced(), 0);
      await waitFor(() => resumes.every((n) => n >= round) && holders.every((c) => !c.resuming), {
        timeout: 60_000,
        what: `every held client resumed after fault ${round} (${resumes.join(' ')}; lost: ${lost.join('; ')})`,
      });
    }
    t.deepEqual(lost, [], 'no handle reported lost, no client gave up');
    t.deepEqual(holders.map((c) => c.handles), granted.map((h) => [h]), 'every held client still holds its own handle');
    // The serving member knows each of them (a RESUME there answers GRANTED: the seat is really held).
    for (const c of holders) await t.notThrowsAsync(c.heartbeat());
    const st = (await set.statuses()).find((s) => s?.master);
    t.is(st?.features.find((f) => f.name === 'F')?.inUse, HELD, 'the master counts exactly the held seats');
  });
}

test('a client that gave up while waiting for a master is not replayed: its RESUME does not take the handle from the live connection and free it', async (t) => {
  t.timeout(120_000);
  const { set, app, port } = await triadBehindProxy(t);
  const pool = app.runtime.pool('triad')!;
  const first = await LineClient.connect(port);
  t.teardown(() => first.destroy());
  t.is(await first.request('HELLO user=held host=h'), 'OK server=a proto=1');
  const handle = /^GRANTED handle=(\S+)/.exec(await first.request('CHECKOUT F'))![1]!;
  // No quorum: a stops serving (closes its clients; the session stays resumable) and no member is master.
  await Promise.all([set.kill(1), set.kill(2)]);
  await waitFor(() => pool.snapshot().activeServer === null, { timeout: 20_000, what: 'no master at the proxy' });
  // The attempt that will succeed waits for a master; then one that the client abandons (its answer timeout).
  const live = await LineClient.connect(port);
  t.teardown(() => live.destroy());
  live.send('HELLO user=held host=h');
  live.send(`RESUME ${handle}`);
  await waitFor(() => pool.counters.queueCur === 1, { timeout: 10_000, what: 'the live attempt queued' });
  const gaveUp = await LineClient.connect(port);
  gaveUp.send('HELLO user=held host=h');
  gaveUp.send(`RESUME ${handle}`);
  await waitFor(() => pool.counters.queueCur === 2, { timeout: 10_000, what: 'the abandoned attempt queued' });
  gaveUp.destroy();
  await Promise.all([set.restart(1), set.restart(2)]);
  t.regex(await live.next(30_000), /^OK server=/);
  t.is(await live.next(30_000), `GRANTED handle=${handle} feature=F count=1`);
  // Every connection but the live one has ended at the proxy (the abandoned one, whatever became of it).
  await waitFor(() => pool.counters.queueCur === 0 && pool.servers.reduce((n, s) => n + s.counters.cur, 0) === 1, { timeout: 20_000, what: 'only the live connection left' });
  t.is(await live.request(`RESUME ${handle}`), `GRANTED handle=${handle} feature=F count=1`, 'still held by the live connection');
  const st = (await set.statuses()).find((s) => s?.master);
  t.is(st?.features.find((f) => f.name === 'F')?.inUse, 1);
});
