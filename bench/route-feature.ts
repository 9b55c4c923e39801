/**
 * What `route: feature` costs (SPEC 8.2, issue 13's figures), against plain forwarding in the same run:
 *
 * - short transactions (connect, HELLO, CHECKOUT, CHECKIN, close) per second and per proxy CPU-second, for a tcp
 *   pool, a `protocol: licd` pool (watching until the first CHECKOUT's answer) and a `route: feature` pool; the
 *   variants alternate round by round on the same two licd backends, so machine drift hits all alike;
 * - the extra latency of a checkout: one client at a time, CHECKOUT sent -> GRANTED read (p50/p99), and the
 *   whole transaction;
 * - memory per connection that said HELLO and waits for its CHECKOUT line (route: feature: no server connection
 *   yet), from the proxy's RSS before and after opening them; a tcp pool's idle connection for comparison.
 *
 * Usage: node --import tsx bench/route-feature.ts [--seconds 8] [--rounds 3] [--concurrency 16] [--probe 2000] [--waiting 3000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLoad } from './licload.ts';
import { BENCH_FEATURE, startLicdBackends } from './lib/backends.ts';
import { cleanup } from './lib/cleanup.ts';
import { Histogram } from './lib/histogram.ts';
import { startLicproxy } from './lib/targets/licproxy.ts';
import { proxyCpu, proxyRssKb, type LicproxySpec, type RunningTarget, type StartContext } from './lib/targets/target.ts';

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

const SECONDS = arg('seconds', 8);
const ROUNDS = arg('rounds', 3);
const CONCURRENCY = arg('concurrency', 16);
const PROBE = arg('probe', 2000);
const WAITING = arg('waiting', 3000);

// Checks every 5 s: the servers' features are known, and the fixed cost of checking stays out of the per-tx figures.
const CHECK = { type: 'lmstat', interval: '5s' };
const VARIANTS: LicproxySpec[] = [
  { kind: 'licproxy', name: 'tcp', description: 'plain forwarding (protocol: tcp)', pool: { check: CHECK } },
  { kind: 'licproxy', name: 'licd', description: 'protocol: licd (watches until the first CHECKOUT answer)', pool: { check: CHECK, protocol: 'licd' } },
  { kind: 'licproxy', name: 'feature', description: 'route: feature', pool: { check: CHECK, route: 'feature' } },
];

interface Tally {
  tx: number;
  cpu: number;
  /** tx per proxy CPU-second of each round, for the per-round ratios (machine load moves between rounds). */
  perCpu: number[];
  errors: number;
  p50: number[];
  p99: number[];
  checkout: Histogram;
  whole: Histogram;
}

/** One line-protocol exchange on a raw socket: resolves the next line. */
function nextLine(s: Socket, state: { buf: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const take = (): boolean => {
      const i = state.buf.indexOf('\n');
      if (i < 0) return false;
      const line = state.buf.slice(0, i);
      state.buf = state.buf.slice(i + 1);
      s.off('data', onData);
      s.off('close', onClose);
      resolve(line);
      return true;
    };
    const onData = (c: Buffer): void => {
      state.buf += c.toString('latin1');
      take();
    };
    const onClose = (): void => reject(new Error('closed'));
    if (take()) return;
    s.on('data', onData);
    s.once('close', onClose);
  });
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, noDelay: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** One client at a time: the time from CHECKOUT written to GRANTED read, and the whole transaction. */
async function probe(port: number, n: number, tally: Tally): Promise<void> {
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    const s = await open(port);
    const st = { buf: '' };
    s.write('HELLO user=probe host=bench\n');
    const ok = await nextLine(s, st);
    if (!ok.startsWith('OK')) throw new Error(`HELLO: ${ok}`);
    const t1 = process.hrtime.bigint();
    s.write(`CHECKOUT ${BENCH_FEATURE}\n`);
    const g = await nextLine(s, st);
    const t2 = process.hrtime.bigint();
    const m = /handle=(\S+)/.exec(g);
    if (!m) throw new Error(`CHECKOUT: ${g}`);
    s.write(`CHECKIN ${m[1]}\n`);
    await nextLine(s, st);
    s.destroy();
    tally.checkout.record(Number(t2 - t1) / 1000);
    tally.whole.record(Number(process.hrtime.bigint() - t0) / 1000);
  }
}

/** A checkout through the target works (feature routing needs the servers' first check). */
async function ready(t: RunningTarget): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await probe(t.port, 1, { tx: 0, cpu: 0, perCpu: [], errors: 0, p50: [], p99: [], checkout: new Histogram(), whole: new Histogram() });
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${t.name}: no checkout through it: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Opens `n` connections that say HELLO and wait; resolves once every HELLO is answered. */
async function holdWaiting(port: number, n: number): Promise<Socket[]> {
  const out: Socket[] = [];
  for (let i = 0; i < n; i += 100) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(100, n - i) }, async () => {
        const s = await open(port);
        s.write('HELLO user=waiting host=bench\n');
        await nextLine(s, { buf: '' });
        return s;
      }),
    );
    out.push(...batch);
  }
  return out;
}

async function memoryPerConnection(spec: LicproxySpec, ctx: StartContext): Promise<number> {
  const t = await startLicproxy({ ...spec, pool: { ...spec.pool, timeouts: { connect: '10m' } } }, ctx);
  try {
    await ready(t);
    const warm = await holdWaiting(t.port, 200);
    for (const s of warm) s.destroy();
    await new Promise((r) => setTimeout(r, 500));
    const before = proxyRssKb(t);
    const held = await holdWaiting(t.port, WAITING);
    await new Promise((r) => setTimeout(r, 500));
    const after = proxyRssKb(t);
    for (const s of held) s.destroy();
    return ((after - before) * 1024) / WAITING;
  } finally {
    await t.stop();
  }
}

async function main(): Promise<void> {
  cleanup.installHandlers();
  const dir = mkdtempSync(join(tmpdir(), 'route-feature-'));
  cleanup.add('temp dir', () => rmSync(dir, { recursive: true, force: true }));
  const backends = await startLicdBackends(2, dir);
  cleanup.add('backends', () => backends.stop());
  const ctx: StartContext = { dir, upstreams: backends.upstreams, maxConnections: Math.max(CONCURRENCY * 2, WAITING + 400) };
  const tallies = new Map<string, Tally>(VARIANTS.map((v) => [v.name, { tx: 0, cpu: 0, perCpu: [], errors: 0, p50: [], p99: [], checkout: new Histogram(), whole: new Histogram() }]));

  for (let r = 0; r < ROUNDS; r++) {
    for (const v of r % 2 === 0 ? VARIANTS : [...VARIANTS].reverse()) {
      const t = await startLicproxy(v, ctx);
      try {
        await ready(t);
        const base = { target: { host: t.host, port: t.port }, mode: 'short' as const, concurrency: CONCURRENCY, feature: BENCH_FEATURE, timeoutMs: 5_000 };
        await runLoad({ ...base, durationMs: 1_000 });
        const cpu0 = proxyCpu(t);
        const res = await runLoad({ ...base, durationMs: SECONDS * 1000 });
        const cpu = proxyCpu(t) - cpu0;
        const tally = tallies.get(v.name)!;
        tally.tx += res.transactions;
        tally.cpu += cpu;
        tally.perCpu.push(res.transactions / cpu);
        tally.errors += res.errors;
        tally.p50.push(res.latencyUs.p50);
        tally.p99.push(res.latencyUs.p99);
        await probe(t.port, Math.ceil(PROBE / ROUNDS), tally);
        const failure = t.failure() ?? backends.failure();
        if (failure) throw new Error(failure);
        process.stderr.write(`round ${r + 1}/${ROUNDS} ${v.name}: ${res.transactions} tx, ${cpu.toFixed(2)} CPU-s\n`);
      } finally {
        await t.stop();
      }
    }
  }

  const mem = { tcp: await memoryPerConnection(VARIANTS[0]!, ctx), feature: await memoryPerConnection(VARIANTS[2]!, ctx) };
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const ms = (us: number) => (us / 1000).toFixed(3);
  const plain = tallies.get('tcp')!;
  const plainPerCpu = plain.tx / plain.cpu;
  const lines: string[] = [];
  lines.push(`Short transactions, ${CONCURRENCY} concurrent clients, ${ROUNDS} rounds x ${SECONDS}s per variant, alternated; 2 licd backends.`);
  lines.push('');
  lines.push('| variant | tx | proxy CPU-s | tx per proxy CPU-s (all rounds) | vs tcp | vs tcp, median of per-round ratios | tx p50 ms (median of rounds) | tx p99 ms | errors |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const v of VARIANTS) {
    const x = tallies.get(v.name)!;
    const perCpu = x.tx / x.cpu;
    const ratios = x.perCpu.map((p, i) => p / plain.perCpu[i]!);
    lines.push(
      `| ${v.name} | ${x.tx} | ${x.cpu.toFixed(2)} | ${perCpu.toFixed(0)} | ${((perCpu / plainPerCpu - 1) * 100).toFixed(1)}% | ` +
        `${((med(ratios) - 1) * 100).toFixed(1)}% | ${ms(med(x.p50))} | ${ms(med(x.p99))} | ${x.errors} |`,
    );
  }
  lines.push('');
  lines.push(`One client at a time, ${PROBE} transactions per variant: CHECKOUT written -> GRANTED read, and the whole transaction.`);
  lines.push('');
  lines.push('| variant | checkout p50 ms | checkout p99 ms | extra p50 vs tcp | extra p99 vs tcp | transaction p50 ms | transaction p99 ms |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|');
  const pc = plain.checkout.summary();
  for (const v of VARIANTS) {
    const c = tallies.get(v.name)!.checkout.summary();
    const w = tallies.get(v.name)!.whole.summary();
    lines.push(`| ${v.name} | ${ms(c.p50)} | ${ms(c.p99)} | ${ms(c.p50 - pc.p50)} | ${ms(c.p99 - pc.p99)} | ${ms(w.p50)} | ${ms(w.p99)} |`);
  }
  lines.push('');
  lines.push(`Memory, ${WAITING} connections that said HELLO and wait (proxy RSS growth / connections):`);
  lines.push(`- route: feature, waiting for the CHECKOUT line (no server connection): ${(mem.feature / 1024).toFixed(1)} KiB per connection`);
  lines.push(`- tcp pool, the same client idle after HELLO (client + server socket): ${(mem.tcp / 1024).toFixed(1)} KiB per connection`);
  process.stdout.write(lines.join('\n') + '\n');
  await cleanup.runAll();
}

main().catch(async (err: unknown) => {
  process.stderr.write(`route-feature: ${(err as Error).stack ?? String(err)}\n`);
  await cleanup.runAll();
  process.exit(2);
});
