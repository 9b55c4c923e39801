/**
 * A stopped (hung) license server still completes TCP handshakes: the kernel answers them from the listen
 * backlog. A tcp check cannot see it; the lmstat check does, by timeout.
 */
import test from 'ava';
import { HealthMonitor } from '../../src/health/health-monitor.ts';
import { TcpCheck } from '../../src/health/tcp-check.ts';
import { spawnLicd } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';
import { RecordingSubject, checkConfig } from './support.ts';

/**
 * The lmstat timeout is what takes the hung server DOWN; a second, so that a busy machine's stall does not time out
 * an answering licd before the stop. The tcp check gets 5 s: it must pass against the stopped process, and a stall
 * of this process must not fail it either.
 */
const timing = { interval: 200, fastInterval: 100, downInterval: 1000, timeout: 1000, rise: 1, fall: 2 };
const tcpTimeout = 5_000;
/** interval + timeout + (fall - 1) x (fast_interval + timeout), with the +-5% jitter of each delay: printed, not asserted. */
const BOUND = timing.interval * 1.05 + timing.timeout + (timing.fall - 1) * (timing.fastInterval * 1.05 + timing.timeout);

test('SIGSTOPped licd: tcp still passes, lmstat fails by timeout', async (t) => {
  const licd = await spawnLicd({ name: 'hung' });
  let stopped = false;
  t.teardown(async () => {
    // Always let it run again before the helper's SIGTERM / SIGKILL cleanup.
    if (stopped) licd.child.kill('SIGCONT');
    await licd.stop();
  });
  const ports = { license: licd.ports.license, tokens: licd.ports.tokens };
  const tcpSubject = new RecordingSubject('127.0.0.1', ports);
  const lmSubject = new RecordingSubject('127.0.0.1', ports);
  const tcp = new HealthMonitor(tcpSubject, checkConfig({ type: 'tcp', port: 'license', ports: ['license', 'tokens'], ...timing, timeout: tcpTimeout }));
  const lm = new HealthMonitor(lmSubject, checkConfig({ type: 'lmstat', port: 'license', ...timing }));
  t.teardown(() => {
    tcp.stop();
    lm.stop();
  });
  tcp.start();
  lm.start();
  // Past the first check's phase spread: from here every delay is the plain interval.
  await waitFor(() => lmSubject.checks.length >= 3 && tcpSubject.checks.length >= 3, { timeout: 10_000, what: 'three checks each' });
  t.is(lm.state, 'up');
  t.is(tcp.state, 'up');
  t.true(lmSubject.checks.every((c) => c.ok && c.master === true));

  const tcpChecksBefore = tcpSubject.checks.length;
  process.kill(licd.child.pid!, 'SIGSTOP');
  stopped = true;
  const stoppedAt = Date.now();
  await waitFor(() => lm.state === 'down', { timeout: 30_000, interval: 5, what: 'lmstat DOWN' });
  const took = Date.now() - stoppedAt;
  t.log(`lmstat DOWN ${took}ms after SIGSTOP (bound ${Math.round(BOUND)}ms)`);
  t.is(lmSubject.transitions.at(-1)!.reason, `timeout after ${timing.timeout}ms`);

  await waitFor(() => tcpSubject.checks.length >= tcpChecksBefore + 3, { timeout: 30_000, what: 'tcp checks of the stopped server' });
  t.true(tcpSubject.checks.slice(tcpChecksBefore).every((c) => c.ok), 'tcp checks pass against a stopped process');
  t.is(tcp.state, 'up');
  const direct = await new TcpCheck(checkConfig({ port: 'license', timeout: tcpTimeout })).run({ host: '127.0.0.1', ports }, new AbortController().signal);
  t.true(direct.ok, direct.reason);

  // Resumed, it answers again and comes back (rise 1).
  licd.child.kill('SIGCONT');
  stopped = false;
  await waitFor(() => lm.state === 'up', { timeout: 30_000, what: 'lmstat UP after SIGCONT' });
  t.pass();
});
