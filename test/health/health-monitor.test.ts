import test from 'ava';
import { HealthMonitor, createMonitorFactory } from '../../src/health/health-monitor.ts';
import type { CheckConfig } from '../../src/config/proxy-config.ts';
import { waitFor } from '../helpers/wait.ts';
import { RecordingSubject, checkConfig, closedPort, listen, toggleServer } from './support.ts';

/** send_expect against a toggle server: OK while healthy, FAIL otherwise. */
const toggleCheck = (over: Partial<CheckConfig> = {}) =>
  checkConfig({ type: 'send_expect', send: 'CHECK\n', expect: '^OK', timeout: 1000, ...over });

async function monitored(over: Partial<CheckConfig> = {}, opts: { healthy?: boolean; random?: () => number } = {}) {
  const server = await toggleServer();
  server.healthy = opts.healthy ?? true;
  const subject = new RecordingSubject('127.0.0.1', { main: server.port });
  const monitor = new HealthMonitor(subject, toggleCheck(over), opts.random ? { random: opts.random } : {});
  subject.statusOf = () => monitor.statusText;
  return { server, subject, monitor };
}

test('the first result decides at once: pass -> UP, fail -> DOWN, whatever rise and fall', async (t) => {
  // An interval of minutes: a first check that waited for it would never meet the deadline below.
  const up = await monitored({ rise: 5, fall: 5, interval: 600_000 });
  const down = await monitored({ rise: 5, fall: 5, interval: 600_000 }, { healthy: false });
  t.teardown(() => {
    up.monitor.stop();
    down.monitor.stop();
    return Promise.all([up.server.close(), down.server.close()]);
  });
  t.is(up.monitor.state, 'unknown');
  t.is(up.monitor.statusText, 'no check');
  up.monitor.start();
  down.monitor.start();
  await waitFor(() => up.subject.checks.length >= 1 && down.subject.checks.length >= 1, { timeout: 30_000, what: 'first checks, at once' });
  t.is(up.monitor.state, 'up');
  t.is(up.monitor.statusText, 'UP');
  t.deepEqual(up.subject.transitions, [{ state: 'up', reason: 'first check passed' }]);
  t.is(down.monitor.state, 'down');
  t.is(down.monitor.statusText, 'DOWN');
  t.is(down.subject.transitions.length, 1);
  t.is(down.subject.transitions[0]!.state, 'down');
  t.regex(down.subject.transitions[0]!.reason, /^closed before \/\^OK\/ matched$/);
});

test('fall failures mark it DOWN, rise successes UP, with HAProxy status texts in between', async (t) => {
  const { server, subject, monitor } = await monitored({ rise: 2, fall: 3, interval: 30, fastInterval: 30, downInterval: 30 });
  t.teardown(() => {
    monitor.stop();
    return server.close();
  });
  // The checks recorded when DOWN is decided: at 30 ms down_interval more failed checks follow before a poll sees it.
  let checksAtDown = -1;
  const setHealth = subject.setHealth.bind(subject);
  subject.setHealth = (state, reason) => {
    if (state === 'down' && checksAtDown < 0) checksAtDown = subject.checks.length;
    setHealth(state, reason);
  };
  monitor.start();
  await waitFor(() => monitor.state === 'up', { what: 'UP' });
  server.healthy = false;
  await waitFor(() => monitor.state === 'down', { what: 'DOWN after fall failures' });
  const failing = subject.checks.slice(0, checksAtDown).filter((c) => !c.ok).length;
  t.is(failing, 3, 'exactly fall=3 failed checks before DOWN');
  server.healthy = true;
  await waitFor(() => monitor.state === 'up' && subject.transitions.length === 3, { what: 'UP again after rise' });
  await waitFor(() => subject.statuses.at(-1) === 'UP', { what: 'status recorded' });
  t.deepEqual(subject.statusSequence.slice(0, 6), ['UP', 'UP 1/3', 'UP 2/3', 'DOWN', 'DOWN 1/2', 'UP']);
  t.deepEqual(
    subject.transitions.map((x) => x.state),
    ['up', 'down', 'up'],
  );
  t.regex(subject.transitions[1]!.reason, /matched/);
  t.is(subject.transitions[2]!.reason, '2 checks passed');
  t.true(subject.checks.every((c) => typeof c.durationMs === 'number' && c.at > 0));
});

test('fast_interval while a change is pending, interval while stable (checks counted by the server)', async (t) => {
  // random 0.5: every delay is exactly its base, so the counts only carry the machine's own slowness.
  const { server, monitor } = await monitored(
    { interval: 600, fastInterval: 40, fall: 1000, rise: 1 },
    { random: () => 0.5 },
  );
  t.teardown(() => {
    monitor.stop();
    return server.close();
  });
  monitor.start();
  await waitFor(() => monitor.state === 'up', { what: 'UP' });
  // Judged on spans of consecutive checks, polled: a busy machine only stretches them, so the stable span reaches
  // the interval however loaded it is, and the pending one comes in far under it unless every round is stalled.
  const stableFrom = Date.now();
  const stable = await waitFor(() => spanOf(server.accepted, stableFrom, 3, (span) => span >= 2 * 600 * 0.95), {
    timeout: 30_000,
    interval: 50,
    what: 'stable: two checks an interval apart',
  });

  server.healthy = false;
  await waitFor(() => monitor.statusText.startsWith('UP 1/'), { what: 'first failure' });
  const pendingFrom = Date.now();
  const pending = await waitFor(() => spanOf(server.accepted, pendingFrom, 6, (span) => span < 600), {
    timeout: 30_000,
    interval: 50,
    what: 'pending: five checks within one interval',
  });
  t.log(`stable: 3 checks over ${stable} ms; pending: 6 checks over ${pending} ms`);
  t.pass();
});

/**
 * The span of the first `n` consecutive times at or after `from` that `ok` accepts (a sliding window), or 0.
 * Shared by the interval tests: a window that fits says which interval the monitor used.
 */
function spanOf(times: readonly number[], from: number, n: number, ok: (span: number) => boolean): number {
  const after = times.filter((x) => x >= from);
  for (let i = 0; i + n <= after.length; i++) {
    const span = after[i + n - 1]! - after[i]!;
    if (ok(span)) return Math.max(span, 1);
  }
  return 0;
}

test('down_interval while DOWN, fast_interval once it starts rising', async (t) => {
  const { server, monitor } = await monitored(
    { interval: 40, fastInterval: 40, downInterval: 700, fall: 1, rise: 2 },
    { healthy: false, random: () => 0.5 },
  );
  t.teardown(() => {
    monitor.stop();
    return server.close();
  });
  monitor.start();
  await waitFor(() => monitor.state === 'down', { what: 'DOWN' });
  // DOWN checks down_interval apart, not interval (40 ms): see the interval test on why spans, polled.
  const from = Date.now();
  const down = await waitFor(() => spanOf(server.accepted, from, 3, (span) => span >= 2 * 700 * 0.95), {
    timeout: 30_000,
    interval: 50,
    what: 'DOWN: two checks down_interval apart',
  });
  t.log(`down: 3 checks over ${down} ms`);

  // Rising: the first success comes at the next down_interval check, the second a fast_interval after it.
  server.healthy = true;
  const healed = Date.now();
  await waitFor(() => monitor.state === 'up', { timeout: 30_000, what: 'UP after rise' });
  // Answers, not accepts: a check accepted just before the heal, and answered after it, is the first to pass.
  const rising = server.passed.filter((x) => x >= healed);
  t.true(rising.length >= 2, `${rising.length} checks passed while rising`);
  t.log(`rise: the two passing checks ${rising.at(-1)! - rising.at(-2)!} ms apart (fast_interval 40 ms, down_interval 700 ms)`);
});

test('reportFailure counts as a failed check at once and switches to fast_interval', async (t) => {
  const { server, subject, monitor } = await monitored({ interval: 60_000, fastInterval: 50, downInterval: 60_000, fall: 3 });
  t.teardown(() => {
    monitor.stop();
    return server.close();
  });
  monitor.start();
  await waitFor(() => monitor.state === 'up', { what: 'UP' });
  const checksBefore = subject.checks.length;
  monitor.reportFailure('connect refused');
  t.is(monitor.statusText, 'UP 1/3', 'counted at once');
  // The interval is a minute; only fast_interval can bring the next check this soon.
  await waitFor(() => subject.checks.length > checksBefore, { timeout: 30_000, what: 'a fast check after a passive failure' });
  await waitFor(() => monitor.statusText === 'UP', { what: 'the passing check resets the count' });

  monitor.reportFailure('connect refused');
  monitor.reportFailure('connect refused');
  t.is(monitor.statusText, 'UP 2/3');
  monitor.reportFailure('connect timed out');
  t.is(monitor.state, 'down');
  t.deepEqual(subject.transitions.at(-1), { state: 'down', reason: 'connect timed out' });
});

test('update() applies a new config without losing the state', async (t) => {
  const { server, subject, monitor } = await monitored({ interval: 50, fall: 3 });
  t.teardown(() => {
    monitor.stop();
    return server.close();
  });
  monitor.start();
  await waitFor(() => monitor.state === 'up', { what: 'UP' });
  monitor.update(toggleCheck({ interval: 30, fall: 2, expect: '^O' }));
  t.is(monitor.state, 'up');
  const n = subject.checks.length;
  await waitFor(() => subject.checks.length >= n + 3, { what: 'checks under the new config' });
  t.is(monitor.state, 'up');
  t.is(subject.transitions.length, 1, 'no transition from a reload');
  // The new fall applies.
  monitor.reportFailure('x');
  monitor.reportFailure('y');
  t.is(monitor.state, 'down');
});

test.serial('stop() cancels the check in flight and leaves no timer behind', async (t) => {
  let open = 0;
  const hung = await listen((s) => {
    open++;
    s.on('close', () => open--);
  });
  t.teardown(() => hung.close());
  const subject = new RecordingSubject('127.0.0.1', { main: hung.port });
  const monitor = new HealthMonitor(subject, toggleCheck({ timeout: 30_000 }));
  const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  monitor.start();
  await waitFor(() => open === 1, { what: 'a check in flight' });
  monitor.stop();
  await waitFor(() => open === 0, { what: 'the in-flight check socket closed by stop()' });
  const timersAfter = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  t.true(timersAfter <= timersBefore, `timers before ${timersBefore}, after ${timersAfter}`);
  t.is(subject.checks.length, 0, 'a cancelled check is not reported');
  t.is(monitor.state, 'unknown');
});

test('a slow check never delays another server, and never overlaps its own next check', async (t) => {
  let concurrent = 0;
  let maxConcurrent = 0;
  const hung = await listen((s) => {
    maxConcurrent = Math.max(maxConcurrent, ++concurrent);
    s.on('close', () => concurrent--);
  });
  const fast = await toggleServer();
  t.teardown(() => Promise.all([hung.close(), fast.close()]));
  const slowSubject = new RecordingSubject('127.0.0.1', { main: hung.port });
  const fastSubject = new RecordingSubject('127.0.0.1', { main: fast.port });
  // The slow server's first check hangs for the whole test (its timeout is far away), while its interval passes
  // again and again; the fast server's checks must go on meanwhile. Judged by what happens while the slow check is
  // in flight, so a busy machine only makes the test take longer.
  const slow = new HealthMonitor(slowSubject, toggleCheck({ timeout: 120_000, interval: 10, fastInterval: 10, downInterval: 10 }));
  const quick = new HealthMonitor(fastSubject, toggleCheck({ timeout: 30_000, interval: 20 }));
  t.teardown(() => {
    slow.stop();
    quick.stop();
  });
  slow.start();
  quick.start();
  await waitFor(() => concurrent === 1, { timeout: 30_000, what: 'the slow check in flight' });
  const slowFrom = Date.now();
  await waitFor(() => fastSubject.checks.length >= 10 && Date.now() - slowFrom >= 20 * 10, { timeout: 60_000, what: 'ten checks of the fast server' });
  t.is(slowSubject.checks.length, 0, 'all the while the slow check was in flight');
  t.is(maxConcurrent, 1, 'never two checks of one server at once, though its interval passed 20 times');
  t.is(slow.state, 'unknown');
  t.is(quick.state, 'up');
});

test('type none: UP at once without a check, status "no check", passive failures ignored', async (t) => {
  const port = await closedPort();
  const subject = new RecordingSubject('127.0.0.1', { main: port });
  const monitor = createMonitorFactory()(subject, checkConfig({ type: 'none' }));
  t.teardown(() => monitor.stop());
  monitor.start();
  t.is(monitor.state, 'up');
  t.is(monitor.statusText, 'no check');
  t.deepEqual(subject.transitions, [{ state: 'up', reason: 'no check configured' }]);
  monitor.reportFailure('connect refused');
  t.is(monitor.state, 'up');

  // A reload that turns checks on keeps UP until the checks say otherwise.
  monitor.update(checkConfig({ type: 'tcp', interval: 20, fastInterval: 20, fall: 2 }));
  t.is(monitor.state, 'up');
  await waitFor(() => monitor.state === 'down', { what: 'DOWN by the new tcp check' });
  t.is(subject.transitions.at(-1)!.reason, 'connect refused');
});

test('tcp: a server closed and opened again on its port goes DOWN and back UP', async (t) => {
  const net = await import('node:net');
  const first = await listen();
  const port = first.port;
  const subject = new RecordingSubject('127.0.0.1', { main: port });
  const monitor = new HealthMonitor(subject, checkConfig({ interval: 30, fastInterval: 30, downInterval: 30, rise: 2, fall: 2 }));
  subject.statusOf = () => monitor.statusText;
  const again = net.createServer((s) => s.destroy());
  t.teardown(() => {
    monitor.stop();
    again.close();
    return first.close();
  });
  monitor.start();
  await waitFor(() => monitor.state === 'up', { what: 'UP' });
  await first.close();
  await waitFor(() => monitor.state === 'down', { what: 'DOWN once the port refuses' });
  t.is(subject.transitions.at(-1)!.reason, 'connect refused');
  await new Promise<void>((resolve, reject) => {
    again.once('error', reject);
    again.listen(port, '127.0.0.1', resolve);
  });
  await waitFor(() => monitor.state === 'up', { what: 'UP once the port accepts again' });
  t.deepEqual(subject.statusSequence, ['UP', 'UP 1/2', 'DOWN', 'DOWN 1/2', 'UP']);
});

test('createMonitorFactory fits the proxy: (server, pool) reads pool.config.check, (subject, check) works too', async (t) => {
  const server = await toggleServer();
  t.teardown(() => server.close());
  const factory = createMonitorFactory();
  // Compile-time: assignable to the proxy's factory type (tsc checks this file).
  const forProxy: import('../../src/proxy/pool.ts').MonitorFactory = factory;
  t.truthy(forProxy);
  const subject = new RecordingSubject('127.0.0.1', { main: server.port });
  const viaPool = factory(subject, { config: { check: toggleCheck({ interval: 20 }) } });
  t.teardown(() => viaPool.stop());
  viaPool.start();
  await waitFor(() => viaPool.state === 'up', { what: 'UP via a pool-shaped source' });
  t.is((viaPool as HealthMonitor).config.interval, 20);
});
