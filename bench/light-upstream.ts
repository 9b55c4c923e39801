/**
 * licproxy against HAProxy 2.6 (nbthread 1) in front of a light upstream (bench/lib/line-server.ts: `CHECKOUT x\n`
 * -> `OK h123\n`, much cheaper than licd), the harness of issue 17:
 *
 * - short: 50 concurrent clients loop connect, request, answer, close;
 * - persistent: 200 connections send the request again as soon as the answer is read;
 * - idle: N connections opened (HELLO -> OK) and held; proxy RSS delta / N.
 *
 * Both proxies balance one pool of two servers (the line server on two ports) with tcp checks every 1 s; licproxy
 * runs `log_level: warn` and one frontend. Targets alternate within every round (licproxy, HAProxy, licproxy,
 * ...), and the figure compared is ops per proxy CPU-second (utime + stime of the proxy process from /proc over
 * the measured window), whose ratio is given per round and as the median of the rounds. With LICPROXY_REF set, a
 * `licproxy-ref` target runs the same configuration from that tree (A/B of a change in the same run).
 *
 * Usage: npm run build && node --import tsx bench/light-upstream.ts [--rounds 5] [--seconds 4] [--warmup 1]
 *          [--only short,persistent,idle] [--idle 5000] [--idle-settle 2] [--short 50] [--persistent 200] [--out FILE]
 *        ... --profile [--top 25]   licproxy alone, with --cpu-prof: its top self-time functions per workload
 *        ... --ab-node-args="--max-semi-space-size=16"   adds licproxy-args: the same tree with these Node options
 *        ... --prototype   adds c-prototype: bench/prototype/c-accept (accept, connect and relay in C; not licproxy;
 *                          not with --profile, which runs licproxy alone)
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startChild, waitForPort } from './lib/child.ts';
import { cleanup } from './lib/cleanup.ts';
import { selfTimes, type CpuProfile } from './lib/cpu-profile.ts';
import { runLineLoad, type LineMode } from './lib/line-load.ts';
import { REPO, tsArgs } from './lib/node-script.ts';
import { freePort } from './lib/ports.ts';
import { resolveTargets, type ResolvedTarget } from './lib/targets/registry.ts';
import { proxyCpuSplit, type RunningTarget, type StartContext, type TargetSpec } from './lib/targets/target.ts';
import { idleWorkload } from './lib/workloads/idle.ts';
import { median, ratioSummary } from './lib/summary.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '4' },
    warmup: { type: 'string', default: '1' },
    only: { type: 'string', default: 'short,persistent,idle' },
    idle: { type: 'string', default: '5000' },
    'idle-settle': { type: 'string', default: '2' },
    'ab-node-args': { type: 'string' },
    short: { type: 'string', default: '50' },
    persistent: { type: 'string', default: '200' },
    out: { type: 'string' },
    profile: { type: 'boolean', default: false },
    prototype: { type: 'boolean', default: false },
    top: { type: 'string', default: '25' },
  },
});
function num(name: keyof typeof values): number {
  const v = Number(values[name]);
  if (!Number.isFinite(v) || v <= 0) {
    process.stderr.write(`--${name}: expected a positive number\n`);
    process.exit(2);
  }
  return v;
}
const ROUNDS = Math.min(50, Math.floor(num('rounds')));
const WINDOW_MS = Math.min(60_000, num('seconds') * 1000);
const WARMUP_MS = Math.min(30_000, num('warmup') * 1000);
const IDLE = Math.min(9_500, Math.floor(num('idle')));
/** Seconds between opening the held connections and reading RSS (a held license lives hours: 6 s shows it after
 * licproxy's first idle sweep, which hands quiet connections to the native relay). */
const IDLE_SETTLE_MS = Math.min(60_000, num('idle-settle') * 1000);
const SHORT_C = Math.min(1000, Math.floor(num('short')));
const PERSISTENT_C = Math.min(5000, Math.floor(num('persistent')));
const ONLY = new Set(values.only!.split(','));

const CHECK = { type: 'tcp', interval: '1s' };
const SPECS: TargetSpec[] = [
  { kind: 'licproxy', name: 'licproxy', description: 'licproxy, log_level warn, tcp checks every 1s', pool: { check: CHECK } },
  { kind: 'haproxy', name: 'haproxy-1t', description: 'HAProxy mode tcp, roundrobin, nbthread 1, check inter 1s', nbthread: 1, check: true },
];
if (values.profile) SPECS.splice(1);
if (values['ab-node-args'] && !values.profile) {
  // The same tree with other Node options, alternated with the others (an A/B of a V8 setting).
  const nodeArgs = values['ab-node-args'].split(/\s+/).filter(Boolean);
  SPECS.push({ kind: 'licproxy', name: 'licproxy-args', description: `licproxy with node ${nodeArgs.join(' ')}`, pool: { check: CHECK }, nodeArgs });
}
if (values.prototype && !values.profile) {
  SPECS.push({ kind: 'naive', name: 'c-prototype', description: 'bench/prototype/c-accept: the design for short transactions, measured', script: 'bench/prototype/c-accept/serve.ts' });
}
if (process.env.LICPROXY_REF && !values.profile) {
  SPECS.push({ kind: 'licproxy', name: 'licproxy-ref', description: `licproxy from ${process.env.LICPROXY_REF}`, pool: { check: CHECK }, repo: () => process.env.LICPROXY_REF });
}

const log = (line: string): void => void process.stderr.write(`${line}\n`);

interface Sample {
  round: number;
  opsPerSec: number;
  perCpu: number;
  cpu: number;
  /** Proxy CPU per operation in user space and in the kernel, microseconds (NaN for idle). */
  userUs: number;
  sysUs: number;
  errors: number;
}

async function measureLoad(t: RunningTarget, mode: LineMode, concurrency: number): Promise<Sample & { note: string | null }> {
  let cpu0 = { total: 0, user: 0 };
  let cpu1 = { total: 0, user: 0 };
  const r = await runLineLoad({
    host: t.host,
    port: t.port,
    mode,
    concurrency,
    warmupMs: WARMUP_MS,
    windowMs: WINDOW_MS,
    onWindow: (edge) => (edge === 'start' ? (cpu0 = proxyCpuSplit(t)) : (cpu1 = proxyCpuSplit(t))),
  });
  const failure = t.failure();
  if (failure) throw new Error(failure);
  const cpu = cpu1.total - cpu0.total;
  const user = cpu1.user - cpu0.user;
  const us = (seconds: number): number => (r.ops > 0 ? (seconds * 1e6) / r.ops : NaN);
  return { round: 0, opsPerSec: r.ops / r.seconds, perCpu: cpu > 0 ? r.ops / cpu : NaN, cpu, userUs: us(user), sysUs: us(cpu - user), errors: r.errors, note: r.errorSample };
}

async function main(): Promise<void> {
  cleanup.installHandlers();
  const dir = mkdtempSync(join(tmpdir(), 'lpx-light-'));
  cleanup.add('temp dir', () => rmSync(dir, { recursive: true, force: true }));
  const versions = new Map<string, string>();
  const { targets, skipped } = resolveTargets(SPECS, log, versions);
  for (const s of skipped) log(`skipped ${s.name}: ${s.reason}`);
  const ports = [await freePort(), await freePort()];
  const upstream = startChild({ name: 'line-server', command: process.execPath, args: tsArgs('bench/lib/line-server.ts', ports.map(String)), cwd: REPO, logFile: join(dir, 'line-server.log') });
  for (const p of ports) await waitForPort('127.0.0.1', p, upstream);
  const ctx: StartContext = { dir, upstreams: ports.map((port) => ({ host: '127.0.0.1', port })), maxConnections: Math.max(IDLE, PERSISTENT_C) + 100 };

  const workloads: { name: string; mode?: LineMode; concurrency?: number }[] = [];
  if (ONLY.has('short')) workloads.push({ name: 'short', mode: 'short', concurrency: SHORT_C });
  if (ONLY.has('persistent')) workloads.push({ name: 'persistent', mode: 'persistent', concurrency: PERSISTENT_C });
  if (ONLY.has('idle')) workloads.push({ name: 'idle' });

  const out: string[] = [];
  const started = new Date().toISOString();
  out.push(`# licproxy vs HAProxy, light upstream (${started})`, '');
  out.push(`node ${process.version}, ${versions.get('haproxy') ?? 'haproxy ?'}; load average at start ${(await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' ')}`, '');
  out.push(`Rounds ${ROUNDS}, window ${WINDOW_MS / 1000} s after ${WARMUP_MS / 1000} s warm-up; targets alternate within each round: ${targets.map((t) => t.spec.name).join(', ')}.`, '');

  for (const w of workloads) {
    const rounds = w.name === 'idle' ? Math.min(ROUNDS, 3) : ROUNDS;
    const samples = new Map<string, Sample[]>(targets.map((t) => [t.spec.name, []]));
    for (let round = 1; round <= rounds; round++) {
      for (const rt of round % 2 === 1 ? targets : [...targets].reverse()) {
        const profDir = join(dir, `prof-${w.name}-${round}`);
        const t = await startTarget(rt, values.profile ? { ...ctx, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] } : ctx);
        try {
          await waitAnswer(t);
          if (w.name === 'idle') {
            const m = await idleWorkload.run(t, { idleConnections: IDLE, idleSettleMs: IDLE_SETTLE_MS, dir } as Parameters<typeof idleWorkload.run>[1]);
            const kb = m.figures.kbPerConn ?? NaN;
            samples.get(rt.spec.name)!.push({ round, opsPerSec: m.figures.held ?? 0, perCpu: kb, cpu: 0, userUs: NaN, sysUs: NaN, errors: m.figures.errors ?? 0 });
            log(`idle r${round} ${rt.spec.name}: ${kb.toFixed(2)} KiB/conn (${m.figures.held} held)`);
          } else {
            const s = await measureLoad(t, w.mode!, w.concurrency!);
            s.round = round;
            samples.get(rt.spec.name)!.push(s);
            log(`${w.name} r${round} ${rt.spec.name}: ${s.opsPerSec.toFixed(0)} ops/s, ${s.perCpu.toFixed(0)} ops/CPU-s, cpu ${s.cpu.toFixed(2)} s (per op ${s.userUs.toFixed(1)} us user + ${s.sysUs.toFixed(1)} us system), ${s.errors} errors${s.note ? ` (${s.note})` : ''}`);
          }
        } finally {
          await t.stop();
        }
        if (values.profile) out.push(...topFunctions(`${w.name}, round ${round}`, profDir));
      }
    }
    out.push(...section(w.name, samples));
    writeFileSync(values.out ?? join(dir, 'unused.md'), out.join('\n') + '\n');
  }
  await upstream.stop();
  const text = out.join('\n') + '\n';
  process.stdout.write(text);
  if (values.out) writeFileSync(values.out, text);
}

async function startTarget(rt: ResolvedTarget, ctx: StartContext): Promise<RunningTarget> {
  try {
    return await rt.start(ctx);
  } catch {
    return rt.start(ctx); // a port taken between freePort and bind: once more
  }
}

/** Both servers UP behind the proxy: a few requests answered (licproxy's first check passes within a second). */
async function waitAnswer(t: RunningTarget): Promise<void> {
  const deadline = Date.now() + 20_000;
  await new Promise((r) => setTimeout(r, 1_200));
  while (Date.now() < deadline) {
    const r = await runLineLoad({ host: t.host, port: t.port, mode: 'short', concurrency: 4, warmupMs: 0, windowMs: 200, onWindow: () => {} });
    if (r.ops > 0 && r.errors === 0) return;
  }
  throw new Error(`${t.name}: no answer through it within 20 s`);
}

/** The top self-time functions of the profile written in `profDir`, as a share of the non-idle time. */
function topFunctions(title: string, profDir: string): string[] {
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) return [`(no profile in ${profDir})`];
  const { total, rows } = selfTimes(JSON.parse(readFileSync(join(profDir, file), 'utf8')) as CpuProfile);
  const busy = total - (rows.find((r) => r.key === '(idle)')?.ms ?? 0);
  const lines = [`### profile: ${title}, ${(busy / 1000).toFixed(2)} s not idle (self time, % of not idle)`, '', '```'];
  for (const r of rows.filter((x) => x.key !== '(idle)').slice(0, Number(values.top))) {
    lines.push(`${((r.ms / busy) * 100).toFixed(1).padStart(5)}%  ${r.ms.toFixed(0).padStart(6)} ms  ${r.key}`);
  }
  lines.push('```', '');
  return lines;
}

function section(name: string, samples: Map<string, Sample[]>): string[] {
  const lines: string[] = [];
  const names = [...samples.keys()];
  const base = 'haproxy-1t';
  if (name === 'idle') {
    lines.push(`## idle: ${IDLE} held connections, KiB of proxy RSS per connection (lower is better)`, '');
    lines.push('| target | median KiB/conn | per round |', '|---|---|---|');
    for (const n of names) {
      const v = samples.get(n)!.map((s) => s.perCpu);
      lines.push(`| ${n} | ${median(v).toFixed(2)} | ${v.map((x) => x.toFixed(2)).join(', ')} |`);
    }
    lines.push('');
    return lines;
  }
  const conc = name === 'short' ? SHORT_C : PERSISTENT_C;
  lines.push(`## ${name}: ${conc} ${name === 'short' ? 'concurrent short connections (connect, request, answer, close)' : 'persistent connections, request/answer back to back'}`, '');
  // The split tells which side a gap is on: the kernel's TCP work is the same for every proxy, user space is not.
  lines.push('| target | median ops/s | median ops per proxy CPU-s | per round (ops/CPU-s) | median proxy CPU per op: user + system | errors |', '|---|---|---|---|---|---|');
  for (const n of names) {
    const ss = samples.get(n)!;
    const split = `${median(ss.map((s) => s.userUs)).toFixed(1)} + ${median(ss.map((s) => s.sysUs)).toFixed(1)} us`;
    lines.push(`| ${n} | ${median(ss.map((s) => s.opsPerSec)).toFixed(0)} | ${median(ss.map((s) => s.perCpu)).toFixed(0)} | ${ss.map((s) => s.perCpu.toFixed(0)).join(', ')} | ${split} | ${ss.reduce((a, s) => a + s.errors, 0)} |`);
  }
  const hb = samples.get(base);
  if (hb) {
    for (const n of names.filter((x) => x !== base)) {
      const ratios = samples.get(n)!.map((s, i) => s.perCpu / hb[i]!.perCpu);
      lines.push('', `${n} / ${base}, ops per proxy CPU-second: median of the per-round ratios ${ratioSummary(ratios)}`);
    }
  }
  lines.push('');
  return lines;
}

main()
  .catch((err: Error) => {
    process.stderr.write(`light-upstream: ${err.stack ?? err.message}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanup.runAll());
