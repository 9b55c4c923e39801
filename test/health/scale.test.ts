/**
 * 1000 servers checked every second by 1000 monitors in one process: every server comes UP from its first check,
 * the checks keep coming round for every server, and a healthy server only ever fails a check by timing out (a
 * stall of a busy machine), never for another reason. What the checks cost the event loop (delay, CPU per check,
 * spread over the interval) is a figure, not a threshold: bench/check-loop.ts prints it against a baseline.
 */
import test from 'ava';
import { HealthMonitor } from '../../src/health/health-monitor.ts';
import { waitFor } from '../helpers/wait.ts';
import { RecordingSubject, checkConfig, listen } from './support.ts';

const SERVERS = 1000;
const PORTS = 4;
/** Rounds of checks every server must see after its first. */
const ROUNDS = 3;

test('1000 monitors at interval 1s: every server UP, checked round after round, no failure but a timeout', async (t) => {
  // Both ends of every probe run in this process.
  const listeners = await Promise.all(Array.from({ length: PORTS }, () => listen((s) => s.destroy())));
  const monitors: HealthMonitor[] = [];
  t.teardown(async () => {
    for (const m of monitors) m.stop();
    await Promise.all(listeners.map((l) => l.close()));
  });
  const subjects = Array.from({ length: SERVERS }, (_, i) => new RecordingSubject('127.0.0.1', { main: listeners[i % PORTS]!.port }));
  const config = checkConfig({ type: 'tcp', interval: 1000, fastInterval: 250, downInterval: 5000, timeout: 500 });
  for (const s of subjects) {
    const m = new HealthMonitor(s, config);
    monitors.push(m);
    m.start();
  }
  // Deadlines that only catch "never": ROUNDS more intervals take ~ROUNDS seconds on an idle machine.
  await waitFor(() => subjects.every((s) => s.checks.length > 0), { timeout: 30_000, interval: 20, what: 'every first check' });
  await waitFor(() => subjects.every((s) => s.checks.length > ROUNDS), { timeout: 60_000, interval: 50, what: `${ROUNDS} more rounds of checks` });
  // A server a stall timed out of UP comes back (rise passes in a row); on an idle machine none went DOWN.
  await waitFor(() => subjects.every((s) => s.transitions.at(-1)!.state === 'up'), { timeout: 60_000, interval: 50, what: 'every server UP' });
  for (const m of monitors) m.stop();

  const checks = subjects.reduce((n, s) => n + s.checks.length, 0);
  const failures = subjects.flatMap((s) => s.checks.filter((c) => !c.ok).map((c) => c.reason));
  t.log(`${SERVERS} servers, ${checks} checks, ${failures.length} failed (timeouts of a stalled process)`);
  // A stall of the whole process (another one hogging the shared cores) can time a check out; nothing else may
  // fail against listeners that accept every connection.
  t.deepEqual(failures.filter((r) => !/^timeout after/.test(r)), []);
  // The first result decides at once, later a DOWN takes `fall` failures in a row: only timeouts may cause one.
  const downs = subjects.flatMap((s) => s.transitions.filter((x) => x.state === 'down').map((x) => x.reason));
  t.deepEqual(downs.filter((r) => !/timeout after/.test(r)), []);
});
