/**
 * Connection accept rate: `acceptConcurrency` clients at once each connect, send one byte to the echo backend,
 * wait for it to come back (so the proxy really opened its server side), close, and start over.
 */
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Histogram } from '../histogram.ts';
import { proxyCpu, type RunningTarget } from '../targets/target.ts';
import type { BenchSettings, Measurement, Workload } from './workload.ts';

const HELLO = Buffer.from('Ex');

/** One connect + echo; resolves with its latency in ms, or null on failure or timeout. */
export function echoOnce(host: string, port: number, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const sock = connect({ host, port });
    const timer = setTimeout(() => done(null), timeoutMs);
    function done(v: number | null): void {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    }
    sock.on('connect', () => sock.write(HELLO));
    sock.once('data', () => done(performance.now() - t0));
    sock.on('error', () => done(null));
    sock.on('close', () => done(null));
  });
}

interface Result {
  done: number;
  errors: number;
  errorSamples: string[];
  seconds: number;
  hist: Histogram;
}

/** Callback-driven (no promise per connection) so the client is not the bottleneck of what it measures. */
function hammer(host: string, port: number, concurrency: number, durationMs: number, maxCount: number): Promise<Result> {
  return new Promise((resolve) => {
    const hist = new Histogram();
    const t0 = performance.now();
    const deadline = t0 + durationMs;
    let started = 0;
    let done = 0;
    let errors = 0;
    let active = 0;
    let finished = false;
    const errorSamples: string[] = [];
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(guard);
      resolve({ done, errors, errorSamples, seconds: (performance.now() - t0) / 1000, hist });
    };
    // Stragglers past the deadline are not waited for beyond this.
    const guard = setTimeout(finish, durationMs + 5_000);
    const one = (): void => {
      if (finished || started >= maxCount || performance.now() >= deadline) {
        if (active === 0) finish();
        return;
      }
      started++;
      active++;
      const c0 = performance.now();
      const sock = connect({ host, port });
      let settled = false;
      const settle = (err: string | null) => {
        if (settled) return;
        settled = true;
        if (err === null) {
          hist.record(Math.round((performance.now() - c0) * 1000));
          done++;
        } else {
          errors++;
          if (errorSamples.length < 5 && !errorSamples.includes(err)) errorSamples.push(err);
        }
        sock.destroy();
        active--;
        // A failing target is not hammered in a hot loop.
        if (err === null) one();
        else setTimeout(one, 5);
      };
      sock.on('connect', () => sock.write(HELLO));
      sock.once('data', () => settle(null));
      sock.on('error', (e: NodeJS.ErrnoException) => settle(e.code ?? e.message));
      sock.on('close', () => settle('closed before the echo'));
      sock.setTimeout(5_000, () => settle('timeout'));
    };
    for (let i = 0; i < concurrency; i++) one();
  });
}

export const acceptWorkload: Workload = {
  name: 'accept',
  title: 'Connection accept rate',
  description: (s) =>
    `${s.acceptConcurrency.toLocaleString('en-US')} concurrent clients each loop connect, 1-byte echo through the target, close, for ${s.durations.accept / 1000}s; latency = connect to echo`,
  backend: 'sink',
  maxConnections: (s) => s.acceptConcurrency * 2,
  metrics: [
    { key: 'rate', label: 'conn/s', better: 'higher', digits: 0, ratio: true },
    { key: 'p50', label: 'p50 ms', better: 'lower' },
    { key: 'p99', label: 'p99 ms', better: 'lower', ratio: true },
    { key: 'p999', label: 'p99.9 ms', better: 'lower' },
    { key: 'cpu', label: 'proxy CPU s', better: 'lower', digits: 2 },
    { key: 'perCpu', label: 'conn per proxy CPU-s', better: 'higher', digits: 0, ratio: true },
    { key: 'errors', label: 'errors', better: 'lower', digits: 0 },
  ],
  headline: 'rate',
  async run(target: RunningTarget, s: BenchSettings): Promise<Measurement> {
    const deadline = Date.now() + 20_000;
    while ((await echoOnce(target.host, target.port, 2_000)) === null) {
      const failure = target.failure();
      if (failure) throw new Error(failure);
      if (Date.now() > deadline) throw new Error(`${target.name}: no echo through it within 20s`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const maxCount = 2_000_000;
    if (s.warmupMs > 0) await hammer(target.host, target.port, Math.min(100, s.acceptConcurrency), Math.min(s.warmupMs, 1_000), maxCount);
    const cpu0 = proxyCpu(target);
    const r = await hammer(target.host, target.port, s.acceptConcurrency, s.durations.accept, maxCount);
    const cpu = target.pid === null ? null : proxyCpu(target) - cpu0;
    const failure = target.failure();
    if (failure) throw new Error(failure);
    const l = r.hist.summary();
    return {
      figures: {
        rate: r.done / r.seconds,
        p50: l.p50 / 1000,
        p99: l.p99 / 1000,
        p999: l.p999 / 1000,
        cpu,
        perCpu: cpu ? r.done / cpu : null,
        errors: r.errors,
      },
      notes: r.errors > 0 ? [`${r.errors} errors (${r.errorSamples.join('; ')})`] : [],
    };
  },
};
