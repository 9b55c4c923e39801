/**
 * `npm run bench [-- options]`: licproxy against licd direct, HAProxy, NGINX stream and a naive Node pipe proxy,
 * on loopback, on several workloads. Targets are alternated within each repetition (A B C D A B C D) so that
 * drift in a shared machine's load hits every target alike; the report gives medians and min-max.
 * See bench/README.md.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startLicdBackends, startSinkBackend, type Backends } from './lib/backends.ts';
import { cleanup } from './lib/cleanup.ts';
import { REPO } from './lib/node-script.ts';
import { renderReport, type Cell, type WorkloadResult } from './lib/report.ts';
import { fmt } from './lib/summary.ts';
import { resolveTargets, TARGETS, type ResolvedTarget } from './lib/targets/registry.ts';
import type { RunningTarget } from './lib/targets/target.ts';
import { DEFAULT_WORKLOADS, WORKLOADS } from './lib/workloads/registry.ts';
import type { BenchSettings, Measurement, Workload } from './lib/workloads/workload.ts';

const USAGE = `usage: npm run bench -- [options]
  --quick               short smoke run (~1-2 minutes): 1 repetition, 1-2 s windows, 1,000 idle connections
  --reps <n>            repetitions per target (default 3; --quick: 1)
  --only <list>         workloads, comma-separated: ${WORKLOADS.map((w) => w.name).join(', ')}
                        (default: ${DEFAULT_WORKLOADS.join(',')})
  --targets <list>      targets, comma-separated: ${TARGETS.map((t) => t.name).join(', ')}
                        (default: every entry not marked extra; "all" = every entry)
  --seconds <s>         measured window of short, ping, bulk and accept (default 8 / 8 / 5 / 5)
  --warmup <s>          warm-up before each window (default 1.5; --quick: 0.5)
  --idle-conns <n>      idle connections held (default 9500; --quick: 1000)
  --servers <n>         licd backend servers behind each proxy (default 1)
  --out <file>          report file (default bench/results/latest.md)
  -h, --help`;

class UsageError extends Error {}

interface Cli {
  settings: Omit<BenchSettings, 'dir'>;
  reps: number;
  workloads: Workload[];
  targetNames: string[];
  servers: number;
  out: string;
  quick: boolean;
}

function positiveInt(name: string, text: string | undefined, fallback: number, max: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new UsageError(`${name} must be a whole number 1..${max}, got "${text}"`);
  return n;
}

function seconds(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const n = Number(text.replace(/s$/, ''));
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`${name} must be ${min}..${max} seconds, got "${text}"`);
  return Math.round(n * 1000);
}

function list(name: string, text: string, known: readonly string[]): string[] {
  const items = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new UsageError(`${name} is empty`);
  for (const i of items) if (!known.includes(i)) throw new UsageError(`${name}: unknown "${i}" (known: ${known.join(', ')})`);
  return [...new Set(items)];
}

function parseCli(argv: string[]): Cli | null {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        quick: { type: 'boolean', default: false },
        reps: { type: 'string' },
        only: { type: 'string' },
        targets: { type: 'string' },
        seconds: { type: 'string' },
        warmup: { type: 'string' },
        'idle-conns': { type: 'string' },
        servers: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]!);
  }
  if (values.help) return null;
  const quick = values.quick!;
  const window = values.seconds === undefined ? null : seconds('--seconds', values.seconds, 0, 0.2, 600);
  const settings: Cli['settings'] = {
    durations: quick
      ? { short: window ?? 1_500, ping: window ?? 1_500, bulk: window ?? 1_000, accept: window ?? 1_000 }
      : { short: window ?? 8_000, ping: window ?? 8_000, bulk: window ?? 5_000, accept: window ?? 5_000 },
    warmupMs: seconds('--warmup', values.warmup, quick ? 500 : 1_500, 0, 60),
    shortConcurrency: 50,
    pingConnections: 200,
    idleConnections: positiveInt('--idle-conns', values['idle-conns'], quick ? 1_000 : 9_500, 9_900),
    idleSettleMs: quick ? 500 : 2_000,
    acceptConcurrency: 1_000,
    bulkMaxBytes: quick ? 300e6 : 1e9,
  };
  const workloadNames = values.only ? list('--only', values.only, WORKLOADS.map((w) => w.name)) : [...DEFAULT_WORKLOADS];
  const targetNames =
    values.targets === 'all'
      ? TARGETS.map((t) => t.name)
      : values.targets
        ? list('--targets', values.targets, TARGETS.map((t) => t.name))
        : TARGETS.filter((t) => !t.extra).map((t) => t.name);
  return {
    settings,
    reps: positiveInt('--reps', values.reps, quick ? 1 : 3, 50),
    workloads: WORKLOADS.filter((w) => workloadNames.includes(w.name)),
    targetNames,
    servers: positiveInt('--servers', values.servers, 1, 8),
    out: resolve(REPO, values.out ?? 'bench/results/latest.md'),
    quick,
  };
}

const log = (line: string) => process.stderr.write(`${line}\n`);

/** Every measurement is bounded: a hung target is recorded as failed, not waited on forever. */
function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no result within ${Math.round(ms / 1000)}s`)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

function budgetMs(w: Workload, s: BenchSettings): number {
  const window = w.name === 'idle' ? 60_000 + s.idleConnections * 10 : (s.durations[w.name === 'bulk-down' ? 'bulk' : (w.name as 'short')] ?? 10_000);
  return 90_000 + window + s.warmupMs;
}

/**
 * Retried: in a shared working tree a source file may be caught mid-edit, and one failed start should not cost the
 * whole run.
 */
async function startBackends(w: Workload, servers: number, dir: string): Promise<Backends> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await (w.backend === 'licd' ? startLicdBackends(servers, dir) : startSinkBackend(dir));
    } catch (err) {
      if (attempt >= 3 || cleanup.closing) throw err;
      log(`  backend failed to start (attempt ${attempt}/3), retrying in 5s: ${(err as Error).message.split('\n')[0]}`);
      await new Promise((r) => setTimeout(r, 5_000));
    }
  }
}

function progressLine(w: Workload, rep: number, reps: number, name: string, m: Measurement): string {
  const parts = w.metrics
    .filter((d) => m.figures[d.key] !== null && m.figures[d.key] !== undefined && (d.key !== 'errors' || m.figures[d.key]! > 0))
    .map((d) => `${d.label} ${fmt(m.figures[d.key]!, d.digits)}`);
  return `  [${w.name} ${rep}/${reps}] ${name.padEnd(18)} ${parts.join(', ')}`;
}

/** The target would not even start: retrying it for every repetition would only repeat the message. */
class StartError extends Error {}

async function measureOnce(w: Workload, target: ResolvedTarget, backends: Backends, s: BenchSettings): Promise<Measurement> {
  let running: RunningTarget | null = null;
  try {
    try {
      running = await target.start({ dir: s.dir, upstreams: backends.upstreams, maxConnections: w.maxConnections(s) });
    } catch (err) {
      throw new StartError((err as Error).message);
    }
    return await w.run(running, s);
  } finally {
    await running?.stop();
  }
}

/** Start failures per target across the run; two in a row and the target is dropped. */
const startFailures = new Map<string, number>();
const MAX_START_FAILURES = 2;

async function runWorkload(w: Workload, targets: ResolvedTarget[], cli: Cli, s: BenchSettings): Promise<WorkloadResult> {
  const result: WorkloadResult = {
    workload: w,
    description: w.description(s),
    targets: targets.map((t) => t.spec.name),
    cells: new Map(targets.map((t) => [t.spec.name, { figures: [], errors: [], notes: [] } satisfies Cell])),
  };
  log(`\n${w.title}: ${result.description}`);
  let backends: Backends;
  try {
    backends = await startBackends(w, cli.servers, s.dir);
  } catch (err) {
    const msg = `backend would not start: ${(err as Error).message}`;
    log(`  ${w.name} skipped: ${msg}`);
    for (const cell of result.cells.values()) cell.errors.push(msg);
    return result;
  }
  try {
    for (let rep = 1; rep <= cli.reps && !cleanup.closing; rep++) {
      for (const t of targets) {
        if (cleanup.closing) break;
        const cell = result.cells.get(t.spec.name)!;
        if ((startFailures.get(t.spec.name) ?? 0) >= MAX_START_FAILURES) {
          if (rep === 1) cell.errors.push('not run: it failed to start twice in a row earlier in this run');
          continue;
        }
        const dead = backends.failure();
        if (dead) {
          log(`  backend died, restarting it: ${dead.split('\n')[0]}`);
          await backends.stop();
          try {
            backends = await startBackends(w, cli.servers, s.dir);
          } catch (err) {
            cell.errors.push(`backend would not restart: ${(err as Error).message}`);
            log(`  ${w.name}: backend would not restart, ending this workload: ${(err as Error).message.split('\n')[0]}`);
            return result;
          }
        }
        try {
          const m = await withTimeout(measureOnce(w, t, backends, s), budgetMs(w, s), `${w.name}/${t.spec.name}`);
          startFailures.set(t.spec.name, 0);
          cell.figures.push(m.figures);
          cell.notes.push(...m.notes);
          log(progressLine(w, rep, cli.reps, t.spec.name, m));
          for (const n of m.notes) log(`      note: ${n}`);
        } catch (err) {
          const msg = (err as Error).message;
          if (err instanceof StartError) startFailures.set(t.spec.name, (startFailures.get(t.spec.name) ?? 0) + 1);
          cell.errors.push(msg);
          log(`  [${w.name} ${rep}/${cli.reps}] ${t.spec.name.padEnd(18)} FAILED: ${msg}`);
        }
      }
    }
  } finally {
    await backends.stop();
  }
  return result;
}

function machineLines(versions: Map<string, string>): string[] {
  const cpu = cpus();
  const [l1, l5, l15] = loadavg();
  return [
    `machine: ${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown CPU'}), Linux ${release()}, node ${process.version}`,
    `haproxy: ${versions.get('haproxy') ?? 'not used'}`,
    `nginx: ${versions.get('nginx') ?? 'not used'}`,
    `load average at start: ${l1!.toFixed(2)} ${l5!.toFixed(2)} ${l15!.toFixed(2)} (the machine is shared: other engineers' tests may run at the same time; read figures with the min-max spread)`,
  ];
}

async function main(argv: string[]): Promise<number> {
  let cli: Cli | null;
  try {
    cli = parseCli(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`bench: ${err.message}\n(run with --help for usage)\n`);
      return 1;
    }
    throw err;
  }
  if (!cli) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (process.platform !== 'linux') {
    process.stderr.write('bench: needs Linux (/proc is read for proxy CPU and memory)\n');
    return 1;
  }
  cleanup.installHandlers();
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'licproxy-bench-'));
  cleanup.add('temp dir', () => rmSync(dir, { recursive: true, force: true }));
  const settings: BenchSettings = { ...cli.settings, dir };
  const versions = new Map<string, string>();
  const specs = cli.targetNames.map((n) => TARGETS.find((t) => t.name === n)!);
  const { targets, skipped } = resolveTargets(specs, log, versions);
  for (const s of skipped) log(`skipping ${s.name}: ${s.reason}`);
  if (targets.length === 0) {
    process.stderr.write('bench: no target can run\n');
    await cleanup.runAll();
    return 2;
  }
  const machine = machineLines(versions);
  log(`licproxy bench: ${cli.workloads.map((w) => w.name).join(', ')} x ${targets.map((t) => t.spec.name).join(', ')} x ${cli.reps} rep(s); temp dir ${dir}`);

  const results: WorkloadResult[] = [];
  const render = (final: boolean): string => {
    const [l1, l5, l15] = loadavg();
    return renderReport(
      {
        date: new Date(started).toISOString(),
        command: ['npm run bench', ...(argv.length ? ['--', ...argv] : [])].join(' '),
        machine: [...machine, `load average at ${final ? 'end' : 'last workload'}: ${l1!.toFixed(2)} ${l5!.toFixed(2)} ${l15!.toFixed(2)}`],
        settings: [
          `backends: ${cli.servers} licd server(s) (license workloads), one sink/source/echo server (bulk, accept), each its own process; everything on 127.0.0.1`,
          'every target is started fresh for each measurement and stopped after it',
          ...(final ? [] : [`**partial report**: ${results.length} of ${cli.workloads.length} workloads done`]),
        ],
        targets: targets.map((t) => t.spec),
        skipped,
        elapsedSeconds: (Date.now() - started) / 1000,
        reps: cli.reps,
      },
      results,
    );
  };
  mkdirSync(dirname(cli.out), { recursive: true });
  try {
    for (const w of cli.workloads) {
      results.push(await runWorkload(w, targets, cli, settings));
      // Written after every workload, so an interrupted long run still leaves what it measured.
      if (results.length < cli.workloads.length) writeFileSync(cli.out, render(false));
    }
  } finally {
    await cleanup.runAll();
  }
  const report = render(true);
  writeFileSync(cli.out, report);
  process.stdout.write(`${report}\n`);
  log(`report written to ${relative(process.cwd(), cli.out) || cli.out}`);
  const anyOk = results.some((r) => [...r.cells.values()].some((c) => c.figures.length > 0));
  return anyOk ? 0 : 2;
}

process.exitCode = await main(process.argv.slice(2));
