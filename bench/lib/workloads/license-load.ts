/**
 * Short transactions and persistent ping-pong through bench/licload.ts (another engineer's load generator,
 * imported, not copied), with the proxy's CPU read around the measured window.
 */
import { runLoad, openIdle, type LoadResult } from '../../licload.ts';
import { BENCH_FEATURE } from '../backends.ts';
import { proxyCpu, type RunningTarget } from '../targets/target.ts';
import type { BenchSettings, Measurement, MetricDef, Workload } from './workload.ts';

const LATENCY_METRICS = (unit: string): MetricDef[] => [
  { key: 'rate', label: `${unit}/s`, better: 'higher', digits: 0, ratio: true },
  { key: 'p50', label: 'p50 ms', better: 'lower' },
  { key: 'p99', label: 'p99 ms', better: 'lower', ratio: true },
  { key: 'p999', label: 'p99.9 ms', better: 'lower' },
  { key: 'cpu', label: 'proxy CPU s', better: 'lower', digits: 2 },
  { key: 'perCpu', label: `${unit} per proxy CPU-s`, better: 'higher', digits: 0, ratio: true },
  { key: 'errors', label: 'errors', better: 'lower', digits: 0 },
];

/** Waits until a HELLO through the target is answered (licproxy routes only after the pool is ready). */
export async function licenseReady(target: RunningTarget, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastFailed = 0;
  while (Date.now() < deadline) {
    const failure = target.failure();
    if (failure) throw new Error(failure);
    const set = await openIdle({ host: target.host, port: target.port }, 1, { timeoutMs: 2_000, user: 'ready' });
    const ok = set.open === 1;
    lastFailed = set.failed;
    await set.close();
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${target.name}: no HELLO answered through it within ${timeoutMs}ms (${lastFailed} failed)`);
}

function toMeasurement(r: LoadResult, cpu: number | null): Measurement {
  const l = r.latencyUs;
  const notes: string[] = [];
  if (r.errors > 0) notes.push(`${r.errors} errors (${r.errorSamples.join('; ')})`);
  if (r.denied > 0) notes.push(`${r.denied} denied`);
  return {
    figures: {
      rate: (r.transactions / r.elapsedMs) * 1000,
      p50: l.p50 / 1000,
      p99: l.p99 / 1000,
      p999: l.p999 / 1000,
      cpu,
      perCpu: cpu ? r.transactions / cpu : null,
      errors: r.errors,
    },
    notes,
  };
}

async function measure(target: RunningTarget, s: BenchSettings, mode: 'short' | 'persistent', concurrency: number, durationMs: number): Promise<Measurement> {
  await licenseReady(target);
  const base = { target: { host: target.host, port: target.port }, mode, concurrency, feature: BENCH_FEATURE, timeoutMs: 5_000 };
  if (s.warmupMs > 0) await runLoad({ ...base, durationMs: s.warmupMs });
  const cpu0 = proxyCpu(target);
  const r = await runLoad({ ...base, durationMs });
  const cpu = target.pid === null ? null : proxyCpu(target) - cpu0;
  const failure = target.failure();
  if (failure) throw new Error(failure);
  return toMeasurement(r, cpu);
}

export const shortWorkload: Workload = {
  name: 'short',
  title: 'Short transactions',
  description: (s) =>
    `${s.shortConcurrency} concurrent clients loop connect, HELLO, CHECKOUT, CHECKIN, close for ${s.durations.short / 1000}s (after ${s.warmupMs / 1000}s warm-up); one transaction = the whole cycle`,
  backend: 'licd',
  maxConnections: (s) => s.shortConcurrency * 2,
  metrics: LATENCY_METRICS('tx'),
  headline: 'rate',
  run: (t, s) => measure(t, s, 'short', s.shortConcurrency, s.durations.short),
};

export const pingWorkload: Workload = {
  name: 'ping',
  title: 'Persistent ping-pong',
  description: (s) =>
    `${s.pingConnections} persistent connections each loop HEARTBEAT -> OK back to back for ${s.durations.ping / 1000}s (after ${s.warmupMs / 1000}s warm-up)`,
  backend: 'licd',
  maxConnections: (s) => s.pingConnections,
  metrics: LATENCY_METRICS('req'),
  headline: 'rate',
  run: (t, s) => measure(t, s, 'persistent', s.pingConnections, s.durations.ping),
};
