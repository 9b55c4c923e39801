/**
 * Tiers decided by licenses (SPEC 8.1), against real licd servers and the real balancer: overflow to the next
 * tier above a usage threshold and back under it; a failover delay that makes clients wait out a blip instead of
 * moving; stepped failback shares; idle affinity bindings dropped at failback, busy ones kept.
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderHtml } from '../../src/stats/render-html.ts';
import { LineClient } from '../helpers/licd.ts';
import { LICPROXY, runBin } from '../helpers/cli.ts';
import { waitFor } from '../helpers/wait.ts';
import { spawnServer, startBalancer, waitEvent } from '../failover/support.ts';
import { balancer, checkin, checkout, countBy, inUse, licds, serversYaml, statsOf, FEATURE } from './support.ts';
import { freeFrontendPorts } from '../helpers/ports.ts';

test('overflow: above 80% of tier 0 new clients spill to tier 1, and come back once under it', async (t) => {
  const ls = await licds(t, ['near', 'far'], [10, 10]);
  const { port } = await balancer(
    t,
    `pools:
  lic:
    feature: ${FEATURE}
    overflow: { above: 80% }
    check: { type: lmstat }
    servers:
${serversYaml(ls, { far: 'tier: 1' })}
frontends:
  - { name: lic, listen: 127.0.0.1:0, pool: lic }
`,
  );
  const first = [];
  for (let i = 0; i < 8; i++) first.push(await checkout(t, port));
  t.deepEqual(countBy(first), { near: 8 }, 'up to 80% of tier 0 stays local');
  const spilled = await Promise.all(Array.from({ length: 3 }, () => checkout(t, port)));
  t.deepEqual(countBy(spilled), { far: 3 }, 'above 80%: the next tier');
  t.is(inUse(ls.near!), 8);
  // Three local users leave: 5/10 in use, new clients are local again (up to 80% once more).
  await Promise.all(first.slice(0, 3).map(checkin));
  const back = [];
  for (let i = 0; i < 3; i++) back.push(await checkout(t, port));
  t.deepEqual(countBy(back), { near: 3 }, 'back under the threshold: tier 0 again');
  const over = await checkout(t, port);
  t.is(over.server, 'far', 'and over it again: tier 1');
});

const DELAY_POOL = (a: number, b: number, delay: string) => `pools:
  lic:
    failover: { delay: ${delay} }
    timeouts: { queue: 30s }
    check: { type: lmstat, interval: 200ms, fast_interval: 100ms, down_interval: 200ms, timeout: 300ms, rise: 2, fall: 2 }
    servers:
      - { name: a, address: 127.0.0.1:${a} }
      - { name: b, address: 127.0.0.1:${b}, tier: 1 }
frontends:
  - { name: lic, listen: 127.0.0.1:0, pool: lic }
`;

async function hello(t: import('ava').ExecutionContext, port: number): Promise<{ client: LineClient; answer: Promise<string> }> {
  const client = await LineClient.connect(port);
  t.teardown(() => client.destroy());
  return { client, answer: client.request('HELLO user=u host=h', 60_000) };
}

test.serial('failover delay: a 2 s blip of tier 0 with a 10 s delay moves nobody; clients wait and get tier 0', async (t) => {
  const a = await spawnServer(t, { name: 'a' });
  const b = await spawnServer(t, { name: 'b' });
  const app = await startBalancer(t, DELAY_POOL(a.ports.license, b.ports.license, '10s'));
  await waitFor(() => app.runtime.pool('lic')!.snapshot().servers.every((s) => s.status === 'UP'), { what: 'both UP' });
  const since = Date.now();
  a.sigstop();
  await waitEvent(app, 'lic', 'a', 'DOWN', since);
  t.like(app.runtime.pool('lic')!.snapshot(), { available: true, activeTier: 0 });
  t.not(app.runtime.pool('lic')!.snapshot().failoverHold, null, 'waiting for tier 0');
  // Clients arriving during the blip wait in the queue.
  const waiting = await Promise.all(Array.from({ length: 5 }, () => hello(t, app.runtime.port('lic'))));
  await waitFor(() => app.runtime.pool('lic')!.counters.queueCur === 5, { what: '5 clients queued' });
  await waitFor(() => Date.now() - since >= 2_000, { what: 'a 2 s blip', interval: 50 });
  a.sigcont();
  const answers = await Promise.all(waiting.map((w) => w.answer));
  t.deepEqual(answers.map((x) => /server=(\S+)/.exec(x)?.[1]), ['a', 'a', 'a', 'a', 'a']);
  t.is(app.runtime.server('lic', 'b')!.counters.total, 0, 'nobody moved to tier 1');
  t.false(app.runtime.eventList().some((e) => e.kind === 'failover'), 'no failover happened');
});

test.serial('failover delay: a tier that stays unusable past the delay sends its waiting clients to the next tier', async (t) => {
  const a = await spawnServer(t, { name: 'a' });
  const b = await spawnServer(t, { name: 'b' });
  const app = await startBalancer(t, DELAY_POOL(a.ports.license, b.ports.license, '1s'));
  await waitFor(() => app.runtime.pool('lic')!.snapshot().servers.every((s) => s.status === 'UP'), { what: 'both UP' });
  const since = Date.now();
  a.sigstop();
  await waitEvent(app, 'lic', 'a', 'DOWN', since);
  const w = await hello(t, app.runtime.port('lic'));
  t.regex(await w.answer, /server=b/);
  t.true(app.runtime.eventList().some((e) => e.kind === 'failover' && e.time >= since));
});

/** Steps 25/50/75/100%: per step, enough clients to measure the share exactly (the split is counted, not drawn). */
test.serial('stepped failback: the recovered tier gets 25%, 50%, 75%, then 100% of new clients', async (t) => {
  const ls = await licds(t, ['a', 'b'], [1000, 1000]);
  const { app, port } = await balancer(
    t,
    `pools:
  lic:
    check: { type: lmstat }
    failback: { steps: [25%, 50%, 75%, 100%], step_interval: 2s }
    servers:
${serversYaml(ls, { b: 'tier: 1' })}
frontends:
  - { name: lic, listen: 127.0.0.1:0, pool: lic }
`,
  );
  const pool = app.runtime.pool('lic')!;
  const a = app.runtime.server('lic', 'a')!;
  a.setAdminState('maint', 'test');
  t.is(pool.activeTier, 1);
  a.setAdminState('ready', 'test');
  const shares: number[] = [];
  for (let step = 1; step <= 4; step++) {
    await waitFor(() => (pool.snapshot().failbackStepping?.step ?? 5) >= step, { what: `step ${step}`, timeout: 10_000 });
    // A batch that straddles a step boundary is measured again in the next step (counted, not timed).
    const before = pool.snapshot().failbackStepping?.step;
    if (before !== step) {
      shares.push(-1);
      continue;
    }
    const sent = [];
    for (let i = 0; i < 40; i++) {
      const c = await checkout(t, port);
      sent.push(c);
    }
    const after = pool.snapshot().failbackStepping?.step;
    await Promise.all(sent.map(checkin));
    if (after !== step) {
      shares.push(-1);
      continue;
    }
    shares.push((100 * (countBy(sent).a ?? 0)) / sent.length);
  }
  t.log(`shares per step: ${shares.join(', ')}`);
  const expected = [25, 50, 75, 100];
  let measured = 0;
  for (let i = 0; i < 4; i++) {
    if (shares[i] === -1) continue;
    measured++;
    t.true(Math.abs(shares[i]! - expected[i]!) <= 5, `step ${i + 1}: ${shares[i]}% to the recovered tier, expected ${expected[i]}%`);
  }
  t.true(measured >= 3, 'at least three steps measured');
  await waitFor(() => pool.snapshot().failbackStepping === null, { what: 'stepping over', timeout: 10_000 });
  const last = await checkout(t, port);
  t.is(last.server, 'a');
});

test.serial('failback drops the bindings of idle clients to the higher tier; bound clients with open connections keep their server', async (t) => {
  const ls = await licds(t, ['a', 'b'], [100, 100]);
  const { app, port } = await balancer(
    t,
    `pools:
  lic:
    check: { type: lmstat }
    affinity: { by: source, ttl: 1h }
    servers:
${serversYaml(ls, { b: 'tier: 1' })}
frontends:
  - { name: lic, listen: 127.0.0.1:0, pool: lic }
`,
  );
  const a = app.runtime.server('lic', 'a')!;
  a.setAdminState('maint', 'test');
  const idle = await LineClient.connect(port, { localAddress: '127.0.0.2' });
  const busy = await LineClient.connect(port, { localAddress: '127.0.0.3' });
  t.teardown(() => (idle.destroy(), busy.destroy()));
  t.regex(await idle.request('HELLO user=idle host=h'), /server=b/);
  t.regex(await busy.request('HELLO user=busy host=h'), /server=b/);
  idle.end();
  await idle.closed;
  await waitFor(() => app.runtime.server('lic', 'b')!.counters.cur === 1, { what: 'the idle client gone' });
  a.setAdminState('ready', 'test');
  t.true(app.runtime.eventList().some((e) => e.kind === 'failback'));
  const idleAgain = await LineClient.connect(port, { localAddress: '127.0.0.2' });
  const busySecond = await LineClient.connect(port, { localAddress: '127.0.0.3' });
  t.teardown(() => (idleAgain.destroy(), busySecond.destroy()));
  t.regex(await idleAgain.request('HELLO user=idle host=h'), /server=a/, 'the idle client goes back to tier 0');
  t.regex(await busySecond.request('HELLO user=busy host=h'), /server=b/, 'the busy client keeps its server');
});

test('a pool feature no server serves: licproxy check warns (and passes); the pool shows it on /stats', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lpx-feature-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ls = await licds(t, ['a'], [5]);
  const yaml = `pools:
  lic:
    feature: NOPE
    check: { type: lmstat }
    servers:
      - { name: a, address: 127.0.0.1:${ls.a!.ports.license}, features: [${FEATURE}] }
frontends:
  - { name: lic, listen: 127.0.0.1:0, pool: lic }
`;
  const file = join(dir, 'licproxy.yaml');
  writeFileSync(file, await freeFrontendPorts(yaml));
  const r = await runBin(LICPROXY, ['check', '-c', file]);
  t.is(r.code, 0);
  t.regex(r.stdout, /configuration is valid/);
  t.regex(r.stderr, /warning: .*licproxy\.yaml:3:\d+.*feature "NOPE" is served by no server of pool lic/);
  const { app } = await balancer(t, yaml);
  const snap = statsOf(app);
  t.like(snap.pools[0], { feature: 'NOPE', featureServed: false });
  t.regex(renderHtml(snap, [], { refreshMs: 0 }), /NOPE.*SERVED BY NO SERVER/);
});
