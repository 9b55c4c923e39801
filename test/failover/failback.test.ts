/**
 * Failback (SPEC 2.4, `failback.delay` / `failback.slowstart`): a primary that comes back after a crash takes new
 * clients only after the delay, then its weight ramps up over the slow start; no connection held on the other
 * server is cut by its return. Two servers in one tier (balance mode) with equal weights, so "its weighted share"
 * is half of the new clients and the ramp is visible in the split.
 */
import test from 'ava';
import { SessionLoad } from '../../bench/lib/failover/session-load.ts';
import { LicenseClient } from '../../src/client/license-client.ts';
import { waitFor } from '../helpers/wait.ts';
import { elapse, spawnServer, startBalancer, tracedMonitors, waitEvent, waitSettled } from './support.ts';

const DELAY = 2_000;
const SLOWSTART = 3_000;
const HOLDERS = 20;
const RATE = 200;

interface Sample {
  at: number;
  primary: number;
  secondary: number;
  primaryStatus: string;
}

/** Index of the last sample taken at or before `t`. */
function sampleAt(samples: readonly Sample[], t: number): number {
  let i = 0;
  while (i + 1 < samples.length && samples[i + 1]!.at <= t) i++;
  return i;
}

/** New connections of each server in [from, to), from counter samples. */
function placed(samples: readonly Sample[], from: number, to: number): { primary: number; secondary: number; share: number } {
  const a = samples[sampleAt(samples, from)]!;
  const b = samples[sampleAt(samples, to)]!;
  const primary = b.primary - a.primary;
  const secondary = b.secondary - a.secondary;
  return { primary, secondary, share: primary / Math.max(1, primary + secondary) };
}

/**
 * New clients the primary should have had in [from, to) by its weight when they came: for each sample interval,
 * the clients placed in it times the primary's share at its end (a stalled process places them when it runs again,
 * and the sampler runs with them). Judging against the weight at the time, not against fixed shares per bucket,
 * keeps the check true however a busy machine bunches the clients in time.
 */
function expectedPrimary(samples: readonly Sample[], from: number, to: number, primaryWeight: (at: number) => number, other: number): number {
  let expected = 0;
  // The same sample intervals as `placed`.
  for (let i = sampleAt(samples, from) + 1; i <= sampleAt(samples, to); i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    const n = b.primary + b.secondary - a.primary - a.secondary;
    const w = primaryWeight(b.at);
    expected += (n * w) / (w + other);
  }
  return expected;
}

test('failback: held connections survive, no new client before failback.delay, then the share ramps over slowstart', async (t) => {
  t.timeout(120_000);
  const first = await spawnServer(t, { name: 'primary' });
  const secondary = await spawnServer(t, { name: 'secondary' });
  const ports = first.ports;

  const { factory, trace } = tracedMonitors();
  const app = await startBalancer(
    t,
    `
global: { log_level: silent }
pools:
  lic:
    mode: balance
    balance: roundrobin
    check: { type: lmstat, interval: 500ms, fast_interval: 100ms, down_interval: 250ms, timeout: 500ms, rise: 2, fall: 2 }
    failback: { delay: 2s, slowstart: 3s }
    servers:
      - { name: primary,   address: 127.0.0.1:${ports.license}, weight: 100 }
      - { name: secondary, address: 127.0.0.1:${secondary.ports.license}, weight: 100 }
frontends:
  - { name: lic, listen: 127.0.0.1:0, pool: lic }
`,
    { monitorFactory: factory },
  );
  const port = app.runtime.port('lic');
  await waitSettled(app, 'lic', ['primary', 'secondary']);

  const killAt = Date.now();
  first.child.kill('SIGKILL');
  await first.exited;
  await waitEvent(app, 'lic', 'primary', 'DOWN', killAt);

  // License connections held on the secondary while the primary is away, heartbeating.
  let disconnects = 0;
  let heartbeatErrors = 0;
  const holders: Array<{ c: LicenseClient; handle: string }> = [];
  for (let i = 0; i < HOLDERS; i++) {
    const c = await LicenseClient.connect('127.0.0.1', port, { resume: false, timeout: 5_000 }, { onDisconnect: () => void disconnects++ });
    t.teardown(() => c.destroy());
    t.is((await c.hello(`holder${i}`, 'ws')).server, 'secondary');
    holders.push({ c, handle: (await c.checkout('LS-DYNA')).handle });
    c.startHeartbeat(200, () => void heartbeatErrors++);
  }

  const primaryServer = app.runtime.server('lic', 'primary')!;
  const secondaryServer = app.runtime.server('lic', 'secondary')!;
  const samples: Sample[] = [];
  const sample = () =>
    samples.push({ at: Date.now(), primary: primaryServer.counters.total, secondary: secondaryServer.counters.total, primaryStatus: primaryServer.status });
  sample();
  const sampler = setInterval(sample, 20);
  t.teardown(() => clearInterval(sampler));
  const load = new SessionLoad({ port, rate: RATE, timeoutMs: 5_000, maxDurationMs: 60_000 });
  t.teardown(() => load.stop());
  load.start();

  // Back on the same ports.
  await spawnServer(t, { name: 'primary', ports });
  const back = await waitFor(() => trace.find((e) => e.server === 'primary' && e.kind === 'transition' && e.state === 'up' && e.at > killAt), {
    timeout: 15_000,
    interval: 5,
    what: 'the primary UP again',
  });
  const rampStart = back.at + DELAY;
  await waitFor(() => Date.now() >= rampStart + SLOWSTART + 2_000, { timeout: SLOWSTART + 10_000, interval: 20, what: 'the ramp and 2s after it' });
  clearInterval(sampler);
  sample();
  await load.stop();

  const during = placed(samples, back.at, rampStart);
  const early = placed(samples, rampStart, rampStart + SLOWSTART / 2);
  const late = placed(samples, rampStart + SLOWSTART / 2, rampStart + SLOWSTART);
  const after = placed(samples, rampStart + SLOWSTART, rampStart + SLOWSTART + 2_000);
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  t.log(
    `primary share of new clients: delay ${pct(during.share)} (${during.primary}/${during.primary + during.secondary}), ` +
      `ramp 1st half ${pct(early.share)} (${early.primary}/${early.primary + early.secondary}), ` +
      `2nd half ${pct(late.share)} (${late.primary}/${late.primary + late.secondary}), ` +
      `after ${pct(after.share)} (${after.primary}/${after.primary + after.secondary}); weighted share 50%`,
  );
  t.is(during.primary, 0, 'no new client to the primary during failback.delay');
  const inDelay = samples.filter((x) => x.at > back.at && x.at < rampStart);
  t.true(inDelay.length > 0 && inDelay.every((x) => x.primaryStatus === 'NOLB'), 'NOLB during failback.delay');
  t.true(during.secondary > 0, 'clients kept arriving during the delay');
  // Smooth weighted round robin over the ramp (about 19% in the first half, 42% in the second, 50% after on an idle
  // machine): each bucket's split follows the primary's weight when its clients came, within a few clients.
  const weightAt = (at: number) => primaryServer.effectiveWeight(at);
  t.true(weightAt(rampStart + SLOWSTART / 4) < 30 && weightAt(rampStart + SLOWSTART) === 100, 'the weight ramps over slowstart');
  for (const [name, b, from, to] of [
    ['ramp 1st half', early, rampStart, rampStart + SLOWSTART / 2],
    ['ramp 2nd half', late, rampStart + SLOWSTART / 2, rampStart + SLOWSTART],
    ['after the ramp', after, rampStart + SLOWSTART, rampStart + SLOWSTART + 2_000],
  ] as const) {
    const n = b.primary + b.secondary;
    const expected = expectedPrimary(samples, from, to, weightAt, 100);
    t.true(n >= 20, `${name}: ${n} new clients, too few to tell shares`);
    t.true(Math.abs(b.primary - expected) <= Math.max(5, 0.05 * n), `${name}: primary got ${b.primary} of ${n}, its weight says ${expected.toFixed(1)}`);
  }
  t.deepEqual(load.records.filter((r) => r.error !== null).map((r) => r.error), [], 'no failed session during the failback');

  // Every held connection is still there, still on the secondary, and answers.
  await elapse(300);
  t.is(disconnects, 0, 'no held connection was closed');
  t.is(heartbeatErrors, 0);
  for (const h of holders) {
    t.true(h.c.connected);
    await h.c.heartbeat();
    t.deepEqual(h.c.handles, [h.handle]);
  }
  t.true(secondaryServer.counters.cur >= HOLDERS);
});
