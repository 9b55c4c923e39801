/**
 * 1000 servers checked every second: the checks must not stall the event loop (which also forwards every
 * client byte) and must spread over the interval instead of arriving in bursts.
 *
 * Run alone: npx ava test/health/scale.test.ts --verbose   (the figures are printed with t.log)
 */
import test from 'ava';
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import { HealthMonitor } from '../../src/health/health-monitor.ts';
import { waitFor } from '../helpers/wait.ts';
import { RecordingSubject, checkConfig, listen } from './support.ts';

const SERVERS = 1000;
const PORTS = 4;
/** Steady state starts once every second check has found its random phase (at most 1.5 intervals). */
const STEADY_FROM_MS = 2000;
const WINDOW_MS = 1500;
/** Two windows make the ~5s run; up to two more only if neither was under the limit. */
const MIN_WINDOWS = 2;
const MAX_WINDOWS = 4;
const P99_LIMIT_MS = 50;

const ms = (ns: number) => (ns / 1e6).toFixed(1);

/**
 * The part of the event-loop delay this process spent working: for each 10ms tick, the smaller of the wall gap
 * and the CPU time used meanwhile. A loop our code blocks burns CPU through the gap; a process the OS did not
 * schedule (other test runs on the shared cores) does not. Tells "we stalled" from "we were starved".
 */
class BusySampler {
  #timer: NodeJS.Timeout | undefined;
  #samples: number[] = [];
  start(): void {
    let wall = performance.now();
    let cpu = process.cpuUsage();
    this.#timer = setInterval(() => {
      const nowWall = performance.now();
      const used = process.cpuUsage(cpu);
      this.#samples.push(Math.min(nowWall - wall, (used.user + used.system) / 1000));
      wall = nowWall;
      cpu = process.cpuUsage();
    }, 10);
  }
  stop(): { p99: number; max: number } {
    clearInterval(this.#timer);
    const sorted = [...this.#samples].sort((a, b) => a - b);
    this.#samples = [];
    return { p99: sorted[Math.floor(sorted.length * 0.99)] ?? 0, max: sorted.at(-1) ?? 0 };
  }
}

test('1000 monitors at interval 1s: event-loop delay p99 under 50ms, checks spread over the interval', async (t) => {
  // Both ends of every probe run in this process: the figures are an upper bound for the checker alone.
  const listeners = await Promise.all(Array.from({ length: PORTS }, () => listen((s) => s.destroy())));
  const monitors: HealthMonitor[] = [];
  t.teardown(async () => {
    for (const m of monitors) m.stop();
    await Promise.all(listeners.map((l) => l.close()));
  });
  const subjects = Array.from({ length: SERVERS }, (_, i) => new RecordingSubject('127.0.0.1', { main: listeners[i % PORTS]!.port }));
  const config = checkConfig({ type: 'tcp', interval: 1000, fastInterval: 250, downInterval: 5000, timeout: 500 });
  const checksSoFar = () => subjects.reduce((n, s) => n + s.checks.length, 0);

  // The start-up burst: 1000 first checks within 50ms, so clients are routed at once. Reported, not asserted.
  const startup = monitorEventLoopDelay({ resolution: 10 });
  startup.enable();
  const started = Date.now();
  for (const s of subjects) {
    const m = new HealthMonitor(s, config);
    monitors.push(m);
    m.start();
  }
  await waitFor(() => subjects.every((s) => s.checks.length > 0), { timeout: 5000, what: 'every first check' });
  const firstRound = Date.now() - started;
  startup.disable();

  // Steady state, in windows of 1.5s. Stalls our checks caused would come back every second, in every window;
  // another process hogging the shared cores does not. So one window under the limit is the pass.
  await waitFor(() => Date.now() - started >= STEADY_FROM_MS, { timeout: STEADY_FROM_MS + 2000, interval: 50, what: 'steady state' });
  const windows: Array<{ from: number; to: number; p50: number; p99: number; max: number; cpuPerCheck: number; busyP99: number }> = [];
  const steadyFrom = Date.now();
  while (windows.length < MAX_WINDOWS) {
    const h: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
    const cpuFrom = process.cpuUsage();
    const checksFrom = checksSoFar();
    const from = Date.now();
    const busy = new BusySampler();
    busy.start();
    h.enable();
    await waitFor(() => Date.now() - from >= WINDOW_MS, { timeout: WINDOW_MS * 3, interval: 100, what: 'a window' });
    h.disable();
    const busyStats = busy.stop();
    const cpu = process.cpuUsage(cpuFrom);
    windows.push({
      from,
      to: Date.now(),
      p50: h.percentile(50) / 1e6,
      p99: h.percentile(99) / 1e6,
      max: h.max / 1e6,
      cpuPerCheck: (cpu.user + cpu.system) / Math.max(1, checksSoFar() - checksFrom),
      busyP99: busyStats.p99,
    });
    if (windows.length >= MIN_WINDOWS && windows.some((w) => w.p99 < P99_LIMIT_MS)) break;
  }
  const steadyMs = Date.now() - steadyFrom;
  for (const m of monitors) m.stop();

  const checks = checksSoFar();
  const failed = subjects.reduce((n, s) => n + s.checks.filter((c) => !c.ok).length, 0);
  const best = windows.reduce((a, b) => (b.p99 < a.p99 ? b : a));
  // Spread, in the window the loop ran freely: a stall of the whole process (another one hogging the cores)
  // releases every timer that fell due during it at once, which says nothing of the scheduling.
  const accepts = listeners.flatMap((l) => l.accepted).filter((at) => at >= best.from && at < best.to);
  const buckets = new Map<number, number>();
  for (const at of accepts) buckets.set(Math.floor(at / 10), (buckets.get(Math.floor(at / 10)) ?? 0) + 1);
  const busiest = Math.max(...buckets.values());
  const slots = Math.floor((best.to - best.from) / 10);

  t.log(`${SERVERS} servers, ${checks} checks (${failed} failed) in ${Date.now() - started}ms; first round done in ${firstRound}ms`);
  t.log(`start-up burst: event-loop delay p99 ${ms(startup.percentile(99))}ms, max ${ms(startup.max)}ms`);
  for (const [i, w] of windows.entries()) {
    t.log(
      `steady window ${i + 1}: event-loop delay p50 ${w.p50.toFixed(1)}ms p99 ${w.p99.toFixed(1)}ms max ${w.max.toFixed(1)}ms, ` +
        `busy part p99 ${w.busyP99.toFixed(1)}ms, CPU ${w.cpuPerCheck.toFixed(0)}us per check`,
    );
  }
  t.log(`spread (window ${windows.indexOf(best) + 1}): ${accepts.length} checks over ${buckets.size}/${slots} 10ms slots, busiest slot ${busiest}`);

  t.true(subjects.every((s) => s.transitions.length === 1 && s.transitions[0]!.state === 'up'), 'every server UP, no flapping');
  t.is(failed, 0);
  t.true(firstRound < 2000, `first round took ${firstRound}ms`);
  const seconds = (Date.now() - started) / 1000;
  t.true(checks >= SERVERS * (seconds - 1.5) && checks <= SERVERS * (seconds + 1.5), `${checks} checks in ${seconds.toFixed(1)}s`);
  if (best.p99 < P99_LIMIT_MS) {
    t.pass();
  } else {
    // Every window was stalled: only acceptable when the stalls were not our work (the OS ran others instead).
    t.log(`every window over ${P99_LIMIT_MS}ms: the shared machine starved this process; judging the busy part`);
    t.true(
      windows.every((w) => w.busyP99 < P99_LIMIT_MS),
      `event-loop delay p99 ${best.p99.toFixed(1)}ms at best, and our own work was part of it`,
    );
  }
  // 1000 checks a second must cost well under a core, even with the listeners in this process.
  t.true(best.cpuPerCheck < 800, `${best.cpuPerCheck.toFixed(0)}us CPU per check`);
  // Evenly spread is ~10 checks per 10ms slot; a burst would put most servers into a few slots.
  t.true(busiest < SERVERS / 4, `busiest 10ms slot had ${busiest} checks`);
  t.true(buckets.size > slots * 0.6, `checks in only ${buckets.size} of ${slots} slots`);
  t.true(steadyMs < WINDOW_MS * MAX_WINDOWS + 3000, `steady state ran ${steadyMs}ms`);
});
