/**
 * Real clients through licproxy, HAProxy 2.6 (nbthread 1) and directly (issue 17): redis-benchmark against
 * redis-server (plain, and pipelined with -P 16) and pgbench against PostgreSQL (8 clients, select-only -S and the
 * default TPC-B-like script), each server behind a one-server pool. The servers are the Debian packages, run in
 * the foreground by the bench in a temp dir (PostgreSQL as the `postgres` user when the bench runs as root) and
 * stopped at the end.
 *
 * Within every round the targets alternate (direct, licproxy, HAProxy, then reversed), each started fresh with
 * tcp checks every 1 s (licproxy `log_level: warn`). Figures: the client's own throughput (redis-benchmark
 * requests/s, pgbench tps), and requests per proxy CPU-second (utime + stime of the proxy over the client's run);
 * ratios licproxy / HAProxy and licproxy / direct per round, and their median.
 *
 * Usage: npm run build && node --import tsx bench/real-clients.ts [--rounds 3] [--only redis,redis-p16,pgbench-S,pgbench]
 *          [--redis-requests 200000] [--pg-seconds 8] [--out FILE]
 */
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startChild, waitForPort, type ChildHandle } from './lib/child.ts';
import { cleanup } from './lib/cleanup.ts';
import { freePort } from './lib/ports.ts';
import { resolveTargets, type ResolvedTarget } from './lib/targets/registry.ts';
import { proxyCpu, type RunningTarget, type StartContext, type TargetSpec } from './lib/targets/target.ts';
import { median, ratioSummary } from './lib/summary.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    only: { type: 'string', default: 'redis,redis-p16,pgbench-S,pgbench' },
    'redis-requests': { type: 'string', default: '200000' },
    'pg-seconds': { type: 'string', default: '8' },
    out: { type: 'string' },
  },
});
const ROUNDS = Math.max(1, Math.min(20, Number(values.rounds) || 3));
const REDIS_N = Math.max(1000, Math.min(10_000_000, Number(values['redis-requests']) || 200_000));
const PG_SECONDS = Math.max(1, Math.min(120, Number(values['pg-seconds']) || 8));
const ONLY = new Set(values.only!.split(','));

const CHECK = { type: 'tcp', interval: '1s' };
const SPECS: TargetSpec[] = [
  { kind: 'direct', name: 'direct', description: 'the client straight to the server' },
  { kind: 'licproxy', name: 'licproxy', description: 'licproxy, log_level warn, tcp checks every 1s, one-server pool', pool: { check: CHECK } },
  { kind: 'haproxy', name: 'haproxy-1t', description: 'HAProxy mode tcp, nbthread 1, check inter 1s', nbthread: 1, check: true },
];

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Runs a client program to its end (bounded by a timeout); its stdout. */
function runClient(cmd: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    p.stderr.setEncoding('utf8').on('data', (s: string) => (err += s.slice(0, 4000)));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    const unregister = cleanup.add(`${cmd} (pid ${p.pid})`, () => void p.kill('SIGKILL'));
    p.once('error', reject);
    p.once('exit', (code) => {
      clearTimeout(timer);
      unregister();
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.trim().slice(-600)}`));
    });
  });
}

interface Server {
  port: number;
  child: ChildHandle;
}

async function startRedis(dir: string): Promise<Server> {
  const port = await freePort();
  const child = startChild({
    name: 'redis-server',
    command: 'redis-server',
    args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir, '--maxclients', '1000'],
    logFile: join(dir, 'redis.log'),
  });
  await waitForPort('127.0.0.1', port, child);
  return { port, child };
}

function pgBin(name: string): string {
  for (const d of ['/usr/local/bin', ...safeGlobPg()]) {
    try {
      execFileSync('test', ['-x', join(d, name)]);
      return join(d, name);
    } catch {
      /* next */
    }
  }
  return name;
}
function safeGlobPg(): string[] {
  try {
    return execFileSync('sh', ['-c', 'ls -d /usr/lib/postgresql/*/bin 2>/dev/null'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** initdb + postgres in the foreground, as `postgres` when root (PostgreSQL refuses to run as root). */
async function startPostgres(dir: string): Promise<Server> {
  const data = join(dir, 'pg');
  const sock = join(dir, 'pgsock');
  mkdirSync(data);
  mkdirSync(sock);
  const asUser = (cmd: string, args: string[]): [string, string[]] => (isRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);
  if (isRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    for (const d of [dir, data, sock]) chownSync(d, uid, gid);
  }
  const [icmd, iargs] = asUser(pgBin('initdb'), ['-D', data, '-A', 'trust', '-U', 'bench', '--no-sync']);
  execFileSync(icmd, iargs, { stdio: 'ignore', timeout: 120_000 });
  const port = await freePort();
  const settings = ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=60', '-c', 'shared_buffers=64MB'];
  const [pcmd, pargs] = asUser(pgBin('postgres'), ['-D', data, '-p', String(port), '-k', sock, '-c', 'listen_addresses=127.0.0.1', ...settings]);
  const child = startChild({ name: 'postgres', command: pcmd, args: pargs, logFile: join(dir, 'postgres.log') });
  await waitForPort('127.0.0.1', port, child, 60_000);
  // The server accepts before it is ready for queries: init retried for a few seconds.
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await runClient('pgbench', ['-i', '-s', '4', '-q', '-h', '127.0.0.1', '-p', String(port), '-U', 'bench', 'postgres'], 120_000);
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  return { port, child };
}

interface Workload {
  name: string;
  title: string;
  server: 'redis' | 'pg';
  unit: string;
  run(host: string, port: number): Promise<number>;
}

/** redis-benchmark --csv: one line per test, "NAME","rps",...; the figure is the mean of SET and GET. */
function redisWorkload(name: string, pipeline: number): Workload {
  const n = pipeline > 1 ? REDIS_N * 4 : REDIS_N;
  return {
    name,
    title: `redis-benchmark -t set,get -c 50 -n ${n}${pipeline > 1 ? ` -P ${pipeline}` : ''}`,
    server: 'redis',
    unit: 'requests/s',
    async run(host, port) {
      const args = ['-h', host, '-p', String(port), '-t', 'set,get', '-c', '50', '-n', String(n), '--csv', ...(pipeline > 1 ? ['-P', String(pipeline)] : [])];
      const out = await runClient('redis-benchmark', args, 300_000);
      const rps = [...out.matchAll(/^"(SET|GET)","([\d.]+)"/gm)].map((m) => Number(m[2]));
      if (rps.length !== 2) throw new Error(`redis-benchmark: unexpected output: ${out.slice(0, 300)}`);
      return rps.reduce((a, b) => a + b, 0) / rps.length;
    },
  };
}

function pgWorkload(name: string, selectOnly: boolean): Workload {
  return {
    name,
    title: `pgbench -c 8 -j 2 -T ${PG_SECONDS}${selectOnly ? ' -S' : ''} (scale 4)`,
    server: 'pg',
    unit: 'tps',
    async run(host, port) {
      const args = ['-c', '8', '-j', '2', '-T', String(PG_SECONDS), ...(selectOnly ? ['-S'] : []), '-h', host, '-p', String(port), '-U', 'bench', 'postgres'];
      const out = await runClient('pgbench', args, (PG_SECONDS + 60) * 1000);
      const m = /tps = ([\d.]+) \((?:without|excluding)/.exec(out) ?? /tps = ([\d.]+)/.exec(out);
      if (!m) throw new Error(`pgbench: no tps in its output: ${out.slice(-300)}`);
      return Number(m[1]);
    },
  };
}

interface Sample {
  rate: number;
  perCpu: number;
}

async function main(): Promise<void> {
  cleanup.installHandlers();
  const dir = mkdtempSync(join(tmpdir(), 'lpx-real-'));
  cleanup.add('temp dir', () => rmSync(dir, { recursive: true, force: true }));
  const versions = new Map<string, string>();
  const { targets, skipped } = resolveTargets(SPECS, log, versions);
  for (const s of skipped) log(`skipped ${s.name}: ${s.reason}`);
  const workloads: Workload[] = [];
  if (ONLY.has('redis')) workloads.push(redisWorkload('redis', 1));
  if (ONLY.has('redis-p16')) workloads.push(redisWorkload('redis-p16', 16));
  if (ONLY.has('pgbench-S')) workloads.push(pgWorkload('pgbench-S', true));
  if (ONLY.has('pgbench')) workloads.push(pgWorkload('pgbench', false));

  const servers: Partial<Record<'redis' | 'pg', Server>> = {};
  if (workloads.some((w) => w.server === 'redis')) servers.redis = await startRedis(dir);
  if (workloads.some((w) => w.server === 'pg')) servers.pg = await startPostgres(dir);

  const out: string[] = [`# Real clients through licproxy, HAProxy and directly (${new Date().toISOString()})`, ''];
  out.push(`node ${process.version}, ${versions.get('haproxy') ?? 'haproxy ?'}, ${execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim().split(' ').slice(0, 3).join(' ')}, ${execFileSync('pgbench', ['--version'], { encoding: 'utf8' }).trim()}; load average at start ${(await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' ')}`, '');
  out.push(`Rounds ${ROUNDS}; within a round the targets alternate (${targets.map((t) => t.spec.name).join(', ')}, then reversed); each proxy is started fresh per run, one-server pool, checks every 1 s.`, '');

  for (const w of workloads) {
    const server = servers[w.server]!;
    const ctx: StartContext = { dir, upstreams: [{ host: '127.0.0.1', port: server.port }], maxConnections: 200 };
    const samples = new Map<string, Sample[]>(targets.map((t) => [t.spec.name, []]));
    for (let round = 1; round <= ROUNDS; round++) {
      for (const rt of round % 2 === 1 ? targets : [...targets].reverse()) {
        const t = await startTarget(rt, ctx);
        try {
          if (t.pid !== null) await new Promise((r) => setTimeout(r, 1_200)); // the first check passes
          const cpu0 = proxyCpu(t);
          const rate = await w.run(t.host, t.port);
          const cpu = proxyCpu(t) - cpu0;
          const failure = t.failure();
          if (failure) throw new Error(failure);
          // Work per proxy CPU-second: the rate times the run's length is not known exactly, so requests are
          // estimated from the client's own count (redis) or rate x duration (pgbench).
          const work = w.server === 'redis' ? (w.name === 'redis' ? REDIS_N : REDIS_N * 4) * 2 : rate * PG_SECONDS;
          samples.get(rt.spec.name)!.push({ rate, perCpu: t.pid === null || cpu <= 0 ? NaN : work / cpu });
          log(`${w.name} r${round} ${rt.spec.name}: ${rate.toFixed(0)} ${w.unit}${t.pid === null ? '' : `, proxy CPU ${cpu.toFixed(2)} s`}`);
        } finally {
          await t.stop();
        }
      }
    }
    out.push(...section(w, samples));
    if (values.out) writeFileSync(values.out, out.join('\n') + '\n');
  }
  const text = out.join('\n') + '\n';
  process.stdout.write(text);
  if (values.out) writeFileSync(values.out, text);
}

async function startTarget(rt: ResolvedTarget, ctx: StartContext): Promise<RunningTarget> {
  try {
    return await rt.start(ctx);
  } catch {
    return rt.start(ctx);
  }
}

function section(w: Workload, samples: Map<string, Sample[]>): string[] {
  const lines = [`## ${w.name}: ${w.title}`, '', `| target | median ${w.unit} | per round | median per proxy CPU-s |`, '|---|---|---|---|'];
  for (const [n, ss] of samples) {
    lines.push(`| ${n} | ${median(ss.map((s) => s.rate)).toFixed(0)} | ${ss.map((s) => s.rate.toFixed(0)).join(', ')} | ${n === 'direct' ? '-' : median(ss.map((s) => s.perCpu)).toFixed(0)} |`);
  }
  const lic = samples.get('licproxy');
  const ratio = (other: string, key: keyof Sample): string | null => {
    const o = samples.get(other);
    if (!lic || !o) return null;
    const rs = lic.map((s, i) => s[key] / o[i]![key]);
    return ratioSummary(rs);
  };
  lines.push('');
  const h = ratio('haproxy-1t', 'rate');
  if (h) lines.push(`- throughput licproxy / haproxy-1t: ${h}`);
  const d = ratio('direct', 'rate');
  if (d) lines.push(`- throughput licproxy / direct: ${d}`);
  const c = ratio('haproxy-1t', 'perCpu');
  if (c) lines.push(`- ${w.unit === 'tps' ? 'transactions' : 'requests'} per proxy CPU-second licproxy / haproxy-1t: ${c}`);
  lines.push('');
  return lines;
}

main()
  .catch((err: Error) => {
    process.stderr.write(`real-clients: ${err.stack ?? err.message}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanup.runAll());
