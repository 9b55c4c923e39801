/**
 * CPU profile of one Node target (licproxy or a variant, naive) under one bench workload: starts the backend and
 * the target with `--cpu-prof`, runs the workload once (warm-up included), stops the target (the profile is
 * written at exit) and prints the top self-time entries, the split between idle, GC and work, and the figures.
 *
 *   node --import tsx bench/profile.ts --workload short --target licproxy [--seconds 8] [--top 30] [--keep dir]
 *   ... --strace      instead: system calls of the target over the run (strace -c -f)
 *   ... --io          instead: read/write system calls and context switches (all threads) per operation, from
 *                     /proc, without the slowdown of strace
 *
 * Bounded: one measurement, the workload's own window, every child killed at the end.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startLicdBackends, startSinkBackend } from './lib/backends.ts';
import { cleanup } from './lib/cleanup.ts';
import { resolveTargets, TARGETS } from './lib/targets/registry.ts';
import { WORKLOADS } from './lib/workloads/registry.ts';
import { selfTimes, type CpuProfile } from './lib/cpu-profile.ts';
import type { BenchSettings } from './lib/workloads/workload.ts';

/** read/write syscalls of the process and context switches summed over its threads. */
function procCounters(pid: number): { syscr: number; syscw: number; ctx: number } {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const num = (re: RegExp, text: string): number => Number(re.exec(text)?.[1] ?? 0);
  let ctx = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const st = readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
      ctx += num(/voluntary_ctxt_switches:\s+(\d+)/, st) + num(/nonvoluntary_ctxt_switches:\s+(\d+)/, st);
    } catch {
      /* thread ended */
    }
  }
  return { syscr: num(/syscr:\s+(\d+)/, io), syscw: num(/syscw:\s+(\d+)/, io), ctx };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      workload: { type: 'string', default: 'short' },
      target: { type: 'string', default: 'licproxy' },
      seconds: { type: 'string', default: '8' },
      top: { type: 'string', default: '30' },
      keep: { type: 'string' },
      strace: { type: 'boolean', default: false },
      io: { type: 'boolean', default: false },
    },
  });
  const w = WORKLOADS.find((x) => x.name === values.workload);
  const spec = TARGETS.find((t) => t.name === values.target);
  if (!w || !spec || (!values.strace && spec.kind !== 'licproxy' && spec.kind !== 'naive') || spec.kind === 'direct') {
    process.stderr.write(`usage: profile.ts --workload <${WORKLOADS.map((x) => x.name).join('|')}> --target <licproxy*|naive>\n`);
    return 1;
  }
  const secs = Math.min(60, Math.max(1, Number(values.seconds)));
  cleanup.installHandlers();
  const dir = values.keep ?? mkdtempSync(join(tmpdir(), 'licproxy-prof-'));
  if (!values.keep) cleanup.add('temp dir', () => rmSync(dir, { recursive: true, force: true }));
  const settings: BenchSettings = {
    durations: { short: secs * 1000, ping: secs * 1000, bulk: secs * 1000, accept: secs * 1000 },
    warmupMs: 1_000,
    shortConcurrency: 50,
    pingConnections: 200,
    idleConnections: 2_000,
    idleSettleMs: 1_000,
    acceptConcurrency: 1_000,
    bulkMaxBytes: 1e9,
    dir,
  };
  const { targets } = resolveTargets([spec], () => {}, new Map());
  const backends = await (w.backend === 'licd' ? startLicdBackends(1, dir) : startSinkBackend(dir));
  const profDir = join(dir, 'prof');
  try {
    const running = await targets[0]!.start({
      dir,
      upstreams: backends.upstreams,
      maxConnections: w.maxConnections(settings),
      nodeArgs: values.strace || values.io ? [] : ['--cpu-prof', `--cpu-prof-dir=${profDir}`],
    });
    let figures;
    const straceOut = join(dir, 'strace.txt');
    const tracer = values.strace ? spawn('strace', ['-c', '-f', '-o', straceOut, '-p', String(running.pid)], { stdio: 'ignore' }) : null;
    const io0 = values.io ? procCounters(running.pid!) : null;
    try {
      if (tracer) await new Promise((r) => setTimeout(r, 500));
      figures = (await w.run(running, settings)).figures;
      if (io0) {
        const io1 = procCounters(running.pid!);
        const ops = (figures.rate ?? figures.mbps ?? 0) * ((settings.durations[w.name as 'short'] ?? 0) + settings.warmupMs) / 1000;
        const per = (k: keyof typeof io0): string => ((io1[k] - io0[k]) / ops).toFixed(2);
        process.stdout.write(
          `${w.name} through ${spec.name}: ${JSON.stringify(figures)}\n` +
            `per operation (approx. ${Math.round(ops)} ops incl. warm-up): read syscalls ${per('syscr')}, write syscalls ${per('syscw')}, context switches ${per('ctx')}\n`,
        );
      }
    } finally {
      if (tracer) {
        tracer.kill('SIGINT');
        await new Promise((r) => tracer.once('exit', r));
      }
      await running.stop();
    }
    if (io0) return 0;
    if (tracer) {
      process.stdout.write(`${w.name} through ${spec.name}: ${JSON.stringify(figures)}\n${readFileSync(straceOut, 'utf8')}`);
      return 0;
    }
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error(`no profile written in ${profDir}`);
    const { total, rows } = selfTimes(JSON.parse(readFileSync(join(profDir, file), 'utf8')) as CpuProfile);
    const idle = rows.find((r) => r.key === '(idle)')?.ms ?? 0;
    const busy = total - idle;
    const out: string[] = [
      `${w.name} through ${spec.name}: ${Object.entries(figures).map(([k, v]) => `${k}=${v === null ? '-' : +v.toFixed(2)}`).join(' ')}`,
      `profile: ${(total / 1000).toFixed(2)} s sampled, ${(busy / 1000).toFixed(2)} s not idle (self time, % of not idle):`,
    ];
    for (const r of rows.filter((x) => x.key !== '(idle)').slice(0, Number(values.top))) {
      out.push(`${((r.ms / busy) * 100).toFixed(1).padStart(5)}%  ${r.ms.toFixed(0).padStart(6)} ms  ${r.key}`);
    }
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    await backends.stop();
    await cleanup.runAll();
  }
  return 0;
}

process.exitCode = await main();
