/**
 * Cost of affinity on the accept path: short license transactions (connect, HELLO, CHECKOUT, CHECKIN, close)
 * through licproxy with `affinity.by: none` (A) and `by: source` (B), alternating A B A B in the same run so
 * machine noise hits both alike. Three licd children behind one licproxy child with two pools (one per variant)
 * over the same servers; the load comes from several loopback source addresses, so the table sees both misses
 * (first connection of an address) and hits.
 *
 * Usage: node --import tsx bench/affinity.ts [--reps 3] [--duration 5s] [--concurrency 48] [--sources 12]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { parseDuration } from '../src/common/duration.ts';
import { spawnLicdChild } from './lib/backends.ts';
import { startChild, waitForPort, type ChildHandle } from './lib/child.ts';
import { cleanup } from './lib/cleanup.ts';
import { REPO } from './lib/node-script.ts';
import { freePort } from './lib/ports.ts';
import { runLoad, type LoadResult } from './licload.ts';

const { values: flags } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5s' },
    concurrency: { type: 'string', default: '48' },
    sources: { type: 'string', default: '12' },
  },
});
const reps = Math.max(1, Number(flags.reps));
const parsed = parseDuration(flags.duration!);
if (typeof parsed !== 'number') throw new Error(`--duration: ${String(parsed)}`);
const durationMs: number = parsed;
const sources = Math.max(1, Number(flags.sources));
const perSource = Math.max(1, Math.round(Number(flags.concurrency) / sources));

cleanup.installHandlers();
const dir = mkdtempSync(join(tmpdir(), 'bench-affinity-'));
cleanup.add('temp dir', () => rmSync(dir, { recursive: true, force: true }));

async function startLicd(name: string): Promise<{ child: ChildHandle; license: number }> {
  const { child, license } = await spawnLicdChild(dir, name, {
    features: [{ name: 'LS-DYNA', version: '2025.1', count: 1_000_000 }],
    heartbeatTimeout: '10m',
    logLevel: 'info',
  });
  await waitForPort('127.0.0.1', license, child);
  return { child, license };
}

async function main(): Promise<void> {
  const licds = await Promise.all(['primary', 'secondary', 'tertiary'].map(startLicd));
  const ports = { none: await freePort(), source: await freePort() };
  const servers = licds.map((l, i) => ({ name: ['primary', 'secondary', 'tertiary'][i], address: `127.0.0.1:${l.license}` }));
  const pool = (by: string) => ({ check: { type: 'none' }, affinity: { by, ttl: '1h' }, timeouts: { connect: '3s', idle: '30m', queue: '10s' }, servers });
  const file = join(dir, 'licproxy.yaml');
  writeFileSync(
    file,
    stringify({
      // warn: a per-connection log line would make the bench measure pino, not the proxy.
      global: { log_level: 'warn', max_connections: 50_000, grace: '1s' },
      pools: { off: pool('none'), on: pool('source') },
      frontends: [
        { name: 'off', listen: `127.0.0.1:${ports.none}`, pool: 'off' },
        { name: 'on', listen: `127.0.0.1:${ports.source}`, pool: 'on' },
      ],
    }),
  );
  const proxy = startChild({ name: 'licproxy', command: process.execPath, args: [join(REPO, 'bin/licproxy.js'), 'run', '-c', file], cwd: REPO, logFile: join(dir, 'licproxy.log') });
  await waitForPort('127.0.0.1', ports.none, proxy);
  await waitForPort('127.0.0.1', ports.source, proxy);

  /** One measurement: `sources` generators in parallel, each from its own loopback address. */
  const measure = async (port: number, ms: number): Promise<{ tps: number; errors: number; p50: number; p99: number }> => {
    const runs: LoadResult[] = await Promise.all(
      Array.from({ length: sources }, (_, i) =>
        runLoad({ target: { host: '127.0.0.1', port }, mode: 'short', concurrency: perSource, durationMs: ms, localAddress: `127.77.0.${i + 1}` }),
      ),
    );
    const tps = runs.reduce((n, r) => n + r.txPerSec, 0);
    const errors = runs.reduce((n, r) => n + r.errors, 0);
    const p50 = median(runs.map((r) => r.latencyUs.p50));
    const p99 = median(runs.map((r) => r.latencyUs.p99));
    const sample = runs.flatMap((r) => r.errorSamples)[0];
    if (sample !== undefined) process.stdout.write(`  first error: ${sample}\n`);
    return { tps, errors, p50, p99 };
  };

  process.stdout.write(`warm-up (1s each)...\n`);
  await measure(ports.none, 1_000);
  await measure(ports.source, 1_000);
  const rows: { rep: number; variant: string; tps: number; errors: number; p50: number; p99: number }[] = [];
  for (let rep = 1; rep <= reps; rep++) {
    for (const [variant, port] of [['by: none', ports.none], ['by: source', ports.source]] as const) {
      const m = await measure(port, durationMs);
      rows.push({ rep, variant, ...m });
      process.stdout.write(`rep ${rep} ${variant.padEnd(10)} ${String(m.tps).padStart(6)} tx/s  p50 ${m.p50} us  p99 ${m.p99} us  errors ${m.errors}\n`);
    }
  }
  const med = (v: string) => median(rows.filter((r) => r.variant === v).map((r) => r.tps));
  const off = med('by: none');
  const on = med('by: source');
  process.stdout.write(
    `\nshort transactions (connect+HELLO+CHECKOUT+CHECKIN+close), ${sources} sources x ${perSource} workers, ${reps} reps of ${durationMs}ms\n` +
      `median by: none   ${off} tx/s\nmedian by: source ${on} tx/s\ndifference ${(((on - off) / off) * 100).toFixed(1)}%\n`,
  );
  await proxy.stop();
  await Promise.all(licds.map((l) => l.child.stop()));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : Math.round((s[s.length / 2 - 1]! + s[s.length / 2]!) / 2);
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  })
  .finally(() => cleanup.runAll());
