/**
 * Disk bytes of the usage history (SPEC 10) per feature-year: writes a year of hourly records through the real
 * UsageStore (the production file format, hour buckets) into a temporary folder, sums the day files' sizes, and
 * reads the year back once (the cost of `/api/usage` over a year).
 * Usage: node --import tsx bench/usage-history-size.ts [--servers 3] [--seats 250]
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { POOL_TOTAL, mergeRecords, type UsageRecord } from '../src/stats/history/usage-record.ts';
import { HOUR_MS, UsageStore } from '../src/stats/history/usage-store.ts';

function arg(name: string, def: number): number {
  const at = process.argv.indexOf(`--${name}`);
  const v = at > 0 ? Number(process.argv[at + 1]) : def;
  if (!Number.isInteger(v) || v < 1) {
    process.stderr.write(`--${name}: expected a whole number above 0\n`);
    process.exit(1);
  }
  return v;
}
const servers = arg('servers', 3);
const seats = arg('seats', 250);
const HOURS = 365 * 24;
const start = Date.UTC(2025, 0, 1);

/** A working-day curve with noise (deterministic): what an engineering site's LS-DYNA seats look like. */
function load(h: number): { peak: number; mean: number; denied: number } {
  const hour = h % 24;
  const weekday = Math.floor(h / 24) % 7 < 5;
  const base = weekday && hour >= 7 && hour < 19 ? 0.6 : 0.1;
  const noise = ((h * 2654435761) % 1000) / 1000;
  const mean = Math.min(seats, seats * base * (0.8 + 0.4 * noise));
  const peak = Math.min(seats, Math.round(mean * 1.25) + 1);
  return { peak, mean, denied: peak >= seats ? Math.round(noise * 20) : 0 };
}

async function sizeOf(names: string[]): Promise<{ bytes: number; gzip: number; files: number; readMs: number; records: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lpx-usage-bench-'));
  try {
    const store = new UsageStore(dir);
    for (let d = 0; d < 365; d++) {
      const day: UsageRecord[] = [];
      for (let h = d * 24; h < (d + 1) * 24; h++) {
        const l = load(h);
        for (const server of names) {
          const share = server === POOL_TOTAL ? 1 : 1 / (names.length - 1 || 1);
          day.push({ at: start + h * HOUR_MS, pool: 'lsdyna', server, feature: 'LS-DYNA', peak: Math.round(l.peak * share), mean: l.mean * share, issued: Math.round(seats * share), denied: Math.round(l.denied * share), samples: 720 });
        }
      }
      await store.append(day);
    }
    const files = readdirSync(dir);
    let bytes = 0;
    let gzip = 0;
    for (const f of files) {
      bytes += statSync(path.join(dir, f)).size;
      gzip += gzipSync(readFileSync(path.join(dir, f))).length;
    }
    const t0 = performance.now();
    const records = mergeRecords(await store.read(start, start + HOURS * HOUR_MS)).length;
    const readMs = performance.now() - t0;
    return { bytes, gzip, files: files.length, readMs, records };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const one = await sizeOf(['alpha']);
const pool = await sizeOf([POOL_TOTAL, ...Array.from({ length: servers }, (_, i) => `server${i + 1}`)]);
const kb = (b: number): string => `${(b / 1024).toFixed(0)} KiB`;
console.log(`usage history, one feature-year (${HOURS} hourly records, ${one.files} day files):`);
console.log(`  one series (pool, server, feature): ${one.bytes} bytes (${kb(one.bytes)}), ${(one.bytes / HOURS).toFixed(1)} bytes/hour, gzip ${kb(one.gzip)}`);
console.log(`  a pool of ${servers} servers + the pool total (${servers + 1} series): ${pool.bytes} bytes (${kb(pool.bytes)}), gzip ${kb(pool.gzip)}`);
console.log(`  reading that year back (${pool.records} records, merged): ${pool.readMs.toFixed(0)} ms`);
