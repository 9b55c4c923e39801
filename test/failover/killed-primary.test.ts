/**
 * A primary license server killed (SIGKILL: its ports then refuse) under load, through the real balancer with the
 * default check settings, `retries: 3`, `redispatch: true` (SPEC 2.4, 2.5). The active-passive pool of SPEC 7
 * (LM-X): `mode: failover`, secondary on tier 1.
 *
 * What a balancer can promise: no client that arrives after the kill fails. Sessions that were mid-answer on the
 * primary when it died are cut by the server's death itself (no layer-4 proxy can replay them), and so are those
 * whose connection the dying process's listener still accepted between kill() and its exit (they are reset when it
 * goes). Those are counted and reported; every session begun once the process is gone must succeed, and the
 * primary must be DOWN on exactly `fall` failures, the passive ones (refused client connects) counting at once.
 */
import test from 'ava';
import { analyseFault } from '../../bench/lib/failover/fault-analysis.ts';
import { SessionLoad } from '../../bench/lib/failover/session-load.ts';
import { waitFor } from '../helpers/wait.ts';
import { serverSnap, spawnServer, startBalancer, tracedMonitors, waitEvent, waitSettled } from './support.ts';

const CLIENTS = 200;

test('SIGKILLed primary: 200 back-to-back clients see no failed checkout that began after the kill; their failed connects mark it DOWN', async (t) => {
  t.timeout(90_000);
  const primary = await spawnServer(t, { name: 'primary' });
  const secondary = await spawnServer(t, { name: 'secondary' });
  const { factory, trace } = tracedMonitors();
  const app = await startBalancer(
    t,
    `
global: { log_level: silent }
pools:
  lmx:
    mode: failover
    retries: 3
    redispatch: true
    check: { type: tcp, interval: 1s, fast_interval: 250ms, down_interval: 5s, timeout: 500ms, rise: 2, fall: 3 }
    servers:
      - { name: primary,   address: 127.0.0.1:${primary.ports.license}, weight: 100 }
      - { name: secondary, address: 127.0.0.1:${secondary.ports.license}, weight: 80, tier: 1 }
frontends:
  - { name: lmx, listen: 127.0.0.1:0, pool: lmx }
`,
    { monitorFactory: factory },
  );
  await waitSettled(app, 'lmx', ['primary', 'secondary'], 'primary');

  const load = new SessionLoad({ port: app.runtime.port('lmx'), workers: CLIENTS, timeoutMs: 10_000, maxDurationMs: 60_000 });
  t.teardown(() => load.stop());
  load.start();
  await waitFor(() => load.records.filter((r) => r.error === null && r.server === 'primary').length >= 1_000, {
    timeout: 30_000,
    interval: 20,
    what: '1000 whole sessions on the primary',
  });

  const killAt = Date.now();
  primary.child.kill('SIGKILL');
  await primary.exited;
  // From here its ports refuse: every session that begins now must be placed elsewhere.
  const goneAt = Date.now();
  const down = await waitEvent(app, 'lmx', 'primary', 'DOWN', killAt, 10_000);
  // Keep loading through more than one check interval after the kill, and well into the secondary's service.
  await waitFor(() => Date.now() - killAt >= 2_500 && load.records.filter((r) => r.start >= goneAt && r.server === 'secondary').length >= 1_000, {
    timeout: 30_000,
    interval: 20,
    what: '1000 sessions on the secondary after the kill',
  });
  await load.stop();

  const fault = analyseFault(load.records, killAt, { faulty: 'primary', secondary: 'secondary' }, goneAt);
  const snap = serverSnap(app, 'lmx', 'primary');
  t.log(
    `${load.records.length} sessions; DOWN ${down.time - killAt}ms after SIGKILL (reason "${down.reason}"); ` +
      `process gone after ${goneAt - killAt}ms; first grant by the secondary ${fault.firstSecondaryGrantMs}ms after the kill`,
  );
  t.log(
    `in flight at the kill (or begun before the process was gone): ${fault.inFlight}, cut: ${fault.cut}; began after the process was gone: ${fault.after}, failed: ${fault.failedAfter}; ` +
      `primary connect errors ${snap.counters.connectErrors}`,
  );

  // What the monitor saw between the kill and DOWN: failed connects of real clients (passive) and checks.
  const seen = trace.filter((e) => e.server === 'primary' && e.at >= killAt);
  const downAt = seen.findIndex((e) => e.kind === 'transition' && e.state === 'down');
  const before = seen.slice(0, downAt);
  const failures = before.slice(before.map((e) => e.ok).lastIndexOf(true) + 1).filter((e) => e.ok === false);
  t.log(`before DOWN: ${failures.map((e) => `${e.kind} "${e.reason}"`).join(', ')}`);
  t.is(failures.length, 3, 'DOWN on the fall-th (3rd) consecutive failure');
  t.is(fault.failedBefore, 0, 'a clean baseline');
  t.is(fault.failedAfter, 0, `failed new sessions: ${JSON.stringify(fault.errors)}`);
  // DOWN does not wait for check rounds: the clients' refused connects count (how fast: bench/failover.ts).
  t.true(failures.some((e) => e.kind === 'passive'), 'failed client connects counted towards DOWN');
  t.is(snap.status, 'DOWN');
  t.not(fault.firstSecondaryGrantMs, null, 'the secondary granted after the kill');
  t.is(app.runtime.pool('lmx')!.snapshot().activeServer, 'secondary');
});
