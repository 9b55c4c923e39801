/**
 * What 1,000 health checks a second cost the event loop that also forwards every client byte: the figures that
 * test/health/scale.test.ts used to assert (a p99 threshold fails on a loaded machine; a figure is read instead).
 *
 *   node --import tsx bench/check-loop.ts [--servers 1000] [--windows 4] [--window 1500]
 *
 * One process: `--servers` HealthMonitors (tcp, interval 1 s) against 4 real listeners of this process, so both ends
 * of every probe run here and the figures are an upper bound for the checker alone. The baseline is the same
 * process with the listeners and no monitor, measured first in the same run: the ratio says what the checks add,
 * whatever else the machine is doing. Bounded: a fixed number of windows, each with a deadline.
 */
import net from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { DEFAULTS, type CheckConfig } from '../src/config/proxy-config.ts';
import { HealthMonitor } from '../src/health/health-monitor.ts';
import type { CheckResult, HealthSubject } from '../src/health/types.ts';
import { fmt } from './lib/summary.ts';

const { values } = parseArgs({
  options: {
    servers: { type: 'string', default: '1000' },
    windows: { type: 'string', default: '4' },
    window: { type: 'string', default: '1500' },
  },
});
const SERVERS = Math.min(5_000, Math.max(1, Number(values.servers)));
const WINDOWS = Math.min(20, Math.max(1, Number(values.windows)));
const WINDOW_MS = Math.min(10_000, Math.max(500, Number(values.window)));
const PORTS = 4;
/** Every second check has found its random phase after at most 1.5 intervals. */
const STEADY_FROM_MS = 2_000;

class Subject implements HealthSubject {
  readonly host = '127.0.0.1';
  readonly ports: Record<string, number>;
  checks = 0;
  failed = 0;
  downs = 0;
  firstAt = 0;
  constructor(port: number) {
    this.ports = { main: port };
  }
  setHealth(state: 'up' | 'down'): void {
    if (state === 'down') this.downs++;
  }
  recordCheck(r: CheckResult): void {
    this.checks++;
    if (!r.ok) this.failed++;
    if (this.firstAt === 0) this.firstAt = Date.now();
  }
}

interface Window {
  p50: number;
  p99: number;
  max: number;
  cpuUsPerCheck: number;
  checks: number;
  /** 10 ms slots of the window that saw a check connect, and the most checks in one slot. */
  slotsUsed: number;
  slots: number;
  busiest: number;
}

const accepted: number[] = [];
const listeners = await Promise.all(
  Array.from({ length: PORTS }, async () => {
    const server = net.createServer((s) => {
      accepted.push(Date.now());
      s.on('error', () => {});
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return server;
  }),
);
const portOf = (i: number) => (listeners[i % PORTS]!.address() as net.AddressInfo).port;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function measure(subjects: Subject[]): Promise<Window> {
  const checksOf = () => subjects.reduce((n, s) => n + s.checks, 0);
  const h = monitorEventLoopDelay({ resolution: 10 });
  const cpu = process.cpuUsage();
  const checks0 = checksOf();
  const from = Date.now();
  h.enable();
  await sleep(WINDOW_MS);
  h.disable();
  const to = Date.now();
  const used = process.cpuUsage(cpu);
  const checks = checksOf() - checks0;
  const slots = new Map<number, number>();
  for (const at of accepted) if (at >= from && at < to) slots.set(Math.floor(at / 10), (slots.get(Math.floor(at / 10)) ?? 0) + 1);
  return {
    p50: h.percentile(50) / 1e6,
    p99: h.percentile(99) / 1e6,
    max: h.max / 1e6,
    cpuUsPerCheck: checks > 0 ? (used.user + used.system) / checks : 0,
    checks,
    slotsUsed: slots.size,
    slots: Math.floor((to - from) / 10),
    busiest: slots.size > 0 ? Math.max(...slots.values()) : 0,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

// Baseline: the same process, listeners open, no monitor.
const baseline: Window[] = [];
for (let i = 0; i < WINDOWS; i++) baseline.push(await measure([]));

const config: CheckConfig = { ...DEFAULTS.pool.check, port: 'main', ports: [], type: 'tcp', interval: 1000, fastInterval: 250, downInterval: 5000, timeout: 500 };
const subjects = Array.from({ length: SERVERS }, (_, i) => new Subject(portOf(i)));
const startup = monitorEventLoopDelay({ resolution: 10 });
startup.enable();
const started = Date.now();
const t0 = performance.now();
const monitors = subjects.map((s) => {
  const m = new HealthMonitor(s, config);
  m.start();
  return m;
});
const startMs = performance.now() - t0;
const deadline = Date.now() + 20_000;
while (subjects.some((s) => s.firstAt === 0) && Date.now() < deadline) await sleep(5);
const firstRoundMs = Math.max(...subjects.map((s) => s.firstAt)) - started;
startup.disable();
await sleep(Math.max(0, started + STEADY_FROM_MS - Date.now()));
const steady: Window[] = [];
for (let i = 0; i < WINDOWS; i++) steady.push(await measure(subjects));
for (const m of monitors) m.stop();
for (const l of listeners) l.close();

const row = (name: string, base: number, checked: number, unit: string) =>
  `| ${name} | ${fmt(base)} ${unit} | ${fmt(checked)} ${unit} | ${base > 0 ? `${fmt(checked / base)}x` : '-'} |`;
const med = (ws: Window[], k: keyof Window) => median(ws.map((w) => w[k]));
console.log(`# Health checks and the event loop\n`);
console.log(`command: \`node --import tsx bench/check-loop.ts --servers ${SERVERS} --windows ${WINDOWS} --window ${WINDOW_MS}\``);
console.log(`${SERVERS} tcp checks a second (interval 1 s) against ${PORTS} listeners of this process; medians of ${WINDOWS} windows of ${WINDOW_MS} ms.\n`);
console.log('| event-loop delay | baseline (no monitor) | with the checks | ratio |');
console.log('|---|---:|---:|---:|');
console.log(row('p50', med(baseline, 'p50'), med(steady, 'p50'), 'ms'));
console.log(row('p99', med(baseline, 'p99'), med(steady, 'p99'), 'ms'));
console.log(row('max', med(baseline, 'max'), med(steady, 'max'), 'ms'));
console.log('');
console.log('| figure | value |');
console.log('|---|---:|');
console.log(`| start-up: ${SERVERS} monitors started, first check of each done | ${fmt(firstRoundMs)} ms (creating and starting them: ${fmt(startMs)} ms) |`);
console.log(`| start-up burst: event-loop delay p99 / max | ${fmt(startup.percentile(99) / 1e6)} / ${fmt(startup.max / 1e6)} ms |`);
console.log(`| checks per second (steady) | ${fmt((med(steady, 'checks') * 1000) / WINDOW_MS)} |`);
console.log(`| CPU per check (both ends in this process) | ${fmt(med(steady, 'cpuUsPerCheck'))} us |`);
console.log(`| spread: 10 ms slots with a check connect | ${fmt(med(steady, 'slotsUsed'))} of ${fmt(med(steady, 'slots'))} |`);
console.log(`| spread: most checks in one 10 ms slot (even: ${fmt(SERVERS / 100)}) | ${fmt(med(steady, 'busiest'))} |`);
const failed = subjects.reduce((n, s) => n + s.failed, 0);
const downs = subjects.reduce((n, s) => n + s.downs, 0);
console.log(`| failed checks / DOWN transitions | ${failed} / ${downs} |`);
