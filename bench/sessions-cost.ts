/**
 * What live sessions (SPEC 10, GET /api/sessions) cost, issue 16's figures:
 *
 * 1. Forwarding: short transactions (connect, HELLO, CHECKOUT, CHECKIN, close) per proxy CPU-second, this tree
 *    against a reference tree without session tracking (the commit before it, built: `--ref <dir>` or LICPROXY_REF),
 *    for a tcp pool and a `protocol: licd` pool (where user, handle id and features are kept). Variants alternate
 *    round by round on the same licd backends, so machine drift hits all alike. Target: under 5%.
 * 2. Rendering with many open sessions: GET /stats, /stats.json and /api/sessions (default limit, limit 10000, and a
 *    filter that matches nothing, so every session is visited) timed from the client, with N connections held open
 *    (HELLO + CHECKOUT each, so every one carries licd fields) from holder processes of at most 5,000 sockets each
 *    (20,000 fds per process). One proxy process holds 2 fds per session, so `--sessions` over 9,000 runs the proxy
 *    with `global.workers: 2` (the merged path: every worker is asked on request).
 *
 * Usage:
 *   git archive <commit before> | tar -x -C /tmp/sessions-ref && ln -s $PWD/node_modules /tmp/sessions-ref/ && (cd /tmp/sessions-ref && npm run build)
 *   npm run build && LICPROXY_REF=/tmp/sessions-ref node --import tsx bench/sessions-cost.ts [--seconds 6] [--rounds 4] [--concurrency 16] [--sessions 10000]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { runLoad } from './licload.ts';
import { classifyClientLine } from '../src/proxy/license-session/licd-lines.ts';
import { SessionSeen } from '../src/proxy/license-session/session-seen.ts';
import { BENCH_FEATURE, startLicdBackends } from './lib/backends.ts';
import { startChild, waitForPort, type ChildHandle } from './lib/child.ts';
import { cleanup } from './lib/cleanup.ts';
import { freePort } from './lib/ports.ts';
import { REPO, tsArgs } from './lib/node-script.ts';
import { childTarget } from './lib/targets/running.ts';
import { startLicproxy, licproxyConfig } from './lib/targets/licproxy.ts';
import { proxyCpu, type LicproxySpec, type RunningTarget, type StartContext } from './lib/targets/target.ts';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) {
    process.stderr.write(`--${name}: expected a positive number\n`);
    process.exit(1);
  }
  return v;
}
function strArg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}

const SECONDS = arg('seconds', 6);
const ROUNDS = Math.min(20, arg('rounds', 4));
const CONCURRENCY = arg('concurrency', 16);
const SESSIONS = Math.min(40_000, arg('sessions', 10_000));
const SAMPLES = Math.min(50, arg('samples', 5));
const REF = strArg('ref') ?? process.env.LICPROXY_REF;
/** Client sockets per holder process: well under the 20,000 fd limit. */
const PER_HOLDER = 5_000;
/** One proxy process holds a client and a server socket per session. */
const ONE_PROCESS_MAX = 9_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// ---- 1. forwarding cost ----

function variants(): LicproxySpec[] {
  const out: LicproxySpec[] = [];
  for (const pool of [{}, { protocol: 'licd' }]) {
    const p = pool as Record<string, unknown>;
    const kind = p.protocol === 'licd' ? 'licd' : 'tcp';
    out.push({ kind: 'licproxy', name: kind, description: `${kind} pool, this tree`, pool: p });
    if (REF !== undefined) out.push({ kind: 'licproxy', name: `${kind}-ref`, description: `${kind} pool, reference tree`, pool: p, repo: () => REF });
  }
  return out;
}

async function forwarding(ctx: StartContext): Promise<string[]> {
  const vs = variants();
  const tally = new Map(vs.map((v) => [v.name, { tx: 0, cpu: 0, perCpu: [] as number[], errors: 0 }]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const v of r % 2 === 0 ? vs : [...vs].reverse()) {
      const t = await startLicproxy(v, ctx);
      try {
        const base = { target: { host: t.host, port: t.port }, mode: 'short' as const, concurrency: CONCURRENCY, feature: BENCH_FEATURE, timeoutMs: 5_000 };
        await runLoad({ ...base, durationMs: 1_000 });
        const cpu0 = proxyCpu(t);
        const res = await runLoad({ ...base, durationMs: SECONDS * 1000 });
        const cpu = proxyCpu(t) - cpu0;
        const x = tally.get(v.name)!;
        x.tx += res.transactions;
        x.cpu += cpu;
        x.perCpu.push(res.transactions / cpu);
        x.errors += res.errors;
        const failure = t.failure();
        if (failure) throw new Error(failure);
        process.stderr.write(`round ${r + 1}/${ROUNDS} ${v.name}: ${res.transactions} tx, ${cpu.toFixed(2)} CPU-s\n`);
      } finally {
        await t.stop();
      }
    }
  }
  const lines = [
    `Short transactions (connect, HELLO, CHECKOUT, CHECKIN, close), ${CONCURRENCY} concurrent clients, ${ROUNDS} rounds x ${SECONDS}s per variant, alternated; 2 licd backends; \`log_level: warn\`, no checks.`,
    REF === undefined ? '(no reference tree given: `--ref <dir>` or LICPROXY_REF; this tree only)' : `Reference tree: ${REF}`,
    '',
    '| variant | tx | proxy CPU-s | tx per proxy CPU-s | vs reference | vs reference, median of per-round ratios | errors |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  const licd = tally.get('licd')!;
  const added = addedWorkPerTransaction();
  const txCpuNs = (licd.cpu / licd.tx) * 1e9;
  const tail = [
    '',
    `Added work per licd transaction, timed in-process (1,000,000 iterations): ${added.seenNs.toFixed(0)} ns ` +
      `(SessionSeen + user + feature + handle id), against ${(txCpuNs / 1000).toFixed(0)} µs of proxy CPU per licd transaction above: ` +
      `${((added.seenNs / txCpuNs) * 100).toFixed(2)}%. For scale, classifying the HELLO and CHECKOUT lines (done before this change too): ${added.classifyNs.toFixed(0)} ns. ` +
      'A tcp pool adds nothing per connection: the registry is the runtime\'s set of live connections, which existed before.',
  ];
  for (const v of vs) {
    const x = tally.get(v.name)!;
    const ref = tally.get(v.name.endsWith('-ref') ? v.name : `${v.name}-ref`);
    const perCpu = x.tx / x.cpu;
    const vsRef = ref === undefined || v.name.endsWith('-ref') ? '' : `${((perCpu / (ref.tx / ref.cpu) - 1) * 100).toFixed(1)}%`;
    const ratios = ref === undefined || v.name.endsWith('-ref') ? [] : x.perCpu.map((p, i) => p / ref.perCpu[i]!);
    lines.push(`| ${v.name} | ${x.tx} | ${x.cpu.toFixed(2)} | ${perCpu.toFixed(0)} | ${vsRef} | ${ratios.length ? `${((med(ratios) - 1) * 100).toFixed(1)}%` : ''} | ${x.errors} |`);
  }
  return [...lines, ...tail];
}

/**
 * The work session tracking adds to one licd transaction, timed in this process where machine noise cannot hide
 * it: a SessionSeen, the HELLO user, the CHECKOUT feature and the GRANTED handle (what license-session.ts does
 * beyond its routing). The line classification itself ran before this change too; it is timed alongside for scale.
 */
function addedWorkPerTransaction(): { seenNs: number; classifyNs: number } {
  const hello = classifyClientLine('HELLO user=alice host=ws12');
  const checkout = classifyClientLine(`CHECKOUT ${BENCH_FEATURE}`);
  const granted = `GRANTED handle=b0.${'0123456789abcdef'.repeat(3)} feature=${BENCH_FEATURE} count=1`;
  const N = 1_000_000;
  let keep = 0;
  const time = (f: () => void): number => {
    for (let i = 0; i < N / 10; i++) f();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) f();
    return Number(process.hrtime.bigint() - t0) / N;
  };
  const seenNs = time(() => {
    const s = new SessionSeen();
    s.hello(hello.user);
    s.checkout(checkout.arg);
    s.granted(granted);
    keep += s.features.length;
  });
  const classifyNs = time(() => {
    keep += classifyClientLine('HELLO user=alice host=ws12').kind + classifyClientLine(`CHECKOUT ${BENCH_FEATURE}`).kind;
  });
  if (keep === -1) process.stderr.write('');
  return { seenNs, classifyNs };
}

// ---- 2. render time with many open sessions ----

interface Holder {
  child: ChildHandle;
  next<T>(what: string, timeoutMs: number): Promise<T>;
}

function spawnHolder(i: number, dir: string): Holder {
  const child = startChild({ name: `holder${i}`, command: process.execPath, args: tsArgs('bench/lib/idle-holder.ts'), cwd: REPO, logFile: join(dir, `holder${i}.log`), ipc: true });
  const inbox: unknown[] = [];
  const waiters: ((m: unknown) => void)[] = [];
  child.process.on('message', (m) => {
    const w = waiters.shift();
    if (w) w(m);
    else inbox.push(m);
  });
  return {
    child,
    next<T>(what: string, timeoutMs: number): Promise<T> {
      if (inbox.length > 0) return Promise.resolve(inbox.shift() as T);
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`holder${i}: no ${what} within ${timeoutMs}ms\n${child.logTail()}`)), timeoutMs);
        waiters.push((m) => {
          clearTimeout(timer);
          const err = (m as { error?: string }).error;
          if (err) reject(new Error(`holder${i}: ${err}`));
          else resolve(m as T);
        });
      });
    },
  };
}

function timedGet(port: number, path: string): Promise<{ ms: number; bytes: number; status: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = get({ host: '127.0.0.1', port, path, timeout: 30_000, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ ms: performance.now() - t0, bytes, status: res.statusCode ?? 0 }));
    });
    req.on('timeout', () => req.destroy(new Error(`${path}: timeout`)));
    req.on('error', reject);
  });
}

const PATHS = ['/stats', '/stats.json', '/api/sessions', '/api/sessions?limit=10000', '/api/sessions?client=192.0.2.1'];

/** Median and max of SAMPLES requests per path; paced so /stats and /stats.json are rendered anew each time. */
async function timePaths(port: number): Promise<Map<string, { med: number; max: number; bytes: number }>> {
  const out = new Map<string, { med: number; max: number; bytes: number }>();
  for (const path of PATHS) {
    const ms: number[] = [];
    let bytes = 0;
    // One untimed request first: the first rendering of a path includes compiling its code.
    const warm = await timedGet(port, path);
    await sleep(Math.max(1_500, warm.ms * 25));
    for (let i = 0; i < SAMPLES; i++) {
      const r = await timedGet(port, path);
      if (r.status !== 200) throw new Error(`${path}: HTTP ${r.status}`);
      ms.push(r.ms);
      bytes = r.bytes;
      // The stats server reuses a rendering younger than 20x its cost: wait that out (a cached answer is fast, so
      // pace by the slowest seen).
      await sleep(Math.max(1_500, Math.max(warm.ms, ...ms) * 25));
    }
    out.set(path, { med: med(ms), max: Math.max(...ms), bytes });
  }
  return out;
}

async function startWithStats(ctx: StartContext, workers: number): Promise<{ t: RunningTarget; stats: number }> {
  const port = await freePort();
  const stats = await freePort();
  const spec: LicproxySpec = { kind: 'licproxy', name: `render-${workers}w`, description: '', pool: { protocol: 'licd' }, global: workers > 1 ? { workers } : {} };
  const file = join(ctx.dir, `${spec.name}.yaml`);
  writeFileSync(file, licproxyConfig(spec, port, stats, ctx));
  const child = startChild({ name: spec.name, command: process.execPath, args: [join(REPO, 'bin/licproxy.js'), 'run', '-c', file], cwd: REPO, logFile: join(ctx.dir, `${spec.name}.log`) });
  await waitForPort('127.0.0.1', port, child);
  await waitForPort('127.0.0.1', stats, child);
  return { t: childTarget(spec.name, port, child, () => {}), stats };
}

async function rendering(ctx: StartContext): Promise<string[]> {
  const workers = SESSIONS > ONE_PROCESS_MAX ? 2 : 1;
  const { t, stats } = await startWithStats(ctx, workers);
  const holderCount = Math.max(2, Math.ceil(SESSIONS / PER_HOLDER));
  const holders = Array.from({ length: holderCount }, (_, i) => spawnHolder(i, ctx.dir));
  try {
    await Promise.all(holders.map((h) => h.next('ready', 30_000)));
    const empty = await timePaths(stats);
    const openTimeout = 30_000 + SESSIONS * 10;
    const shares = holders.map((_, i) => Math.floor(SESSIONS / holderCount) + (i < SESSIONS % holderCount ? 1 : 0));
    holders.forEach((h, i) => h.child.process.send({ open: { host: t.host, port: t.port, count: shares[i]!, timeoutMs: openTimeout, feature: BENCH_FEATURE, user: `user${i}` } }));
    const opened = await Promise.all(holders.map((h) => h.next<{ opened: number; failed: number }>('opened', openTimeout + 10_000)));
    const held = opened.reduce((a, o) => a + o.opened, 0);
    await sleep(1_000);
    const full = await timePaths(stats);
    const failure = t.failure();
    if (failure) throw new Error(failure);
    const lines = [
      `${held.toLocaleString('en-US')} sessions held open (HELLO + CHECKOUT, \`protocol: licd\`) from ${holderCount} holder processes; proxy with ${workers === 1 ? 'one process' : `\`global.workers: ${workers}\``}; ${SAMPLES} requests per path, paced past the render cache; times are request to last byte on loopback.`,
      '',
      '| path | 0 sessions: median ms | with sessions: median ms | max ms | body bytes |',
      '|---|---:|---:|---:|---:|',
    ];
    for (const p of PATHS) {
      const e = empty.get(p)!;
      const f = full.get(p)!;
      lines.push(`| \`${p}\` | ${e.med.toFixed(1)} | ${f.med.toFixed(1)} | ${f.max.toFixed(1)} | ${f.bytes.toLocaleString('en-US')} |`);
    }
    return lines;
  } finally {
    await Promise.all(
      holders.map(async (h) => {
        if (h.child.exited) return;
        try {
          h.child.process.send({ close: true });
          await h.next('closed', 15_000);
        } catch {
          /* stop() ends it either way */
        }
        await h.child.stop(2_000);
      }),
    );
    await t.stop();
  }
}

async function main(): Promise<void> {
  cleanup.installHandlers();
  const dir = mkdtempSync(join(tmpdir(), 'sessions-cost-'));
  cleanup.add('temp dir', () => rmSync(dir, { recursive: true, force: true }));
  const backends = await startLicdBackends(2, dir);
  cleanup.add('backends', () => backends.stop());
  const ctx: StartContext = { dir, upstreams: backends.upstreams, maxConnections: SESSIONS + 1_000 };
  const only = strArg('only');
  const out: string[] = [];
  if (only === undefined || only === 'forwarding') out.push('### Forwarding cost of session tracking', '', ...(await forwarding(ctx)), '');
  if (only === undefined || only === 'render') out.push('### /stats and /api/sessions with open sessions', '', ...(await rendering(ctx)), '');
  const failure = backends.failure();
  if (failure) throw new Error(failure);
  process.stdout.write(out.join('\n'));
  await cleanup.runAll();
}

main().catch(async (err: unknown) => {
  process.stderr.write(`sessions-cost: ${(err as Error).stack ?? String(err)}\n`);
  await cleanup.runAll();
  process.exit(2);
});
