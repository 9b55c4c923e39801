/**
 * One line of the usage history (SPEC 10): a pool, server and feature over one hour. A line is tab-separated text
 * so a torn line (a crash mid-write) is recognisable and `grep`/`awk` work on the files:
 *
 *   <bucket>\t<pool>\t<server>\t<feature>\t<peak>\t<mean>\t<issued>\t<denied>\t<samples>\n
 *
 * `bucket` is the bucket's start divided by the bucket length of the file (its header line), so an hour is six
 * digits, not thirteen. `server` is `*` for the pool's total (`*` is not a valid server name). Names are
 * percent-escaped where they hold `%`, a tab, a line break or another control character (feature names come from
 * the license servers' reports).
 */

export interface UsageRecord {
  /** Start of the bucket, Date.now() milliseconds. */
  at: number;
  pool: string;
  /** `*`: the pool's total. */
  server: string;
  feature: string;
  /** Highest seats in use in one check result of the bucket. */
  peak: number;
  /** Mean seats in use over the bucket's check results. */
  mean: number;
  /** Highest seats issued seen in the bucket. */
  issued: number;
  /** Checkouts the servers denied in the bucket (SPEC 8 counters). */
  denied: number;
  /** Check results the bucket summarises (0: only denials were seen). */
  samples: number;
}

/** The pool-total row's server name. */
export const POOL_TOTAL = '*';

export const FORMAT_HEADER = '#licproxy-usage v1 bucket_ms=';

export function headerLine(bucketMs: number): string {
  return `${FORMAT_HEADER}${bucketMs}\n`;
}

/** The bucket length a header line declares; null when the line is not a header. */
export function parseHeader(line: string): number | null {
  if (!line.startsWith(FORMAT_HEADER)) return null;
  const ms = Number(line.slice(FORMAT_HEADER.length));
  return Number.isSafeInteger(ms) && ms > 0 ? ms : null;
}

export function encodeRecord(r: UsageRecord, bucketMs: number): string {
  return `${Math.floor(r.at / bucketMs)}\t${esc(r.pool)}\t${esc(r.server)}\t${esc(r.feature)}\t${r.peak}\t${round2(r.mean)}\t${r.issued}\t${r.denied}\t${r.samples}\n`;
}

/** A line without its newline; null for a torn or foreign line (skipped by readers, never fatal). */
export function decodeRecord(line: string, bucketMs: number): UsageRecord | null {
  const f = line.split('\t');
  if (f.length !== 9) return null;
  const bucket = Number(f[0]);
  const nums = [f[4], f[5], f[6], f[7], f[8]].map(Number);
  if (!Number.isSafeInteger(bucket) || bucket < 0 || nums.some((n) => !Number.isFinite(n) || n < 0)) return null;
  const [peak, mean, issued, denied, samples] = nums as [number, number, number, number, number];
  const pool = unesc(f[1]!);
  const server = unesc(f[2]!);
  const feature = unesc(f[3]!);
  if (pool === null || server === null || feature === null || pool === '' || feature === '') return null;
  return { at: bucket * bucketMs, pool, server, feature, peak, mean, issued, denied, samples };
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

function esc(s: string): string {
  return /[%\u0000-\u001f\u007f]/.test(s) ? s.replace(/[%\u0000-\u001f\u007f]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`) : s;
}

function unesc(s: string): string | null {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

/**
 * Records of the same bucket, pool, server and feature folded into one: a bucket written at a graceful stop and
 * again after the restart, or written by two runs, reads as one hour (peak: the higher, mean: weighted by samples).
 */
export function mergeRecords(records: readonly UsageRecord[]): UsageRecord[] {
  const out = new Map<string, UsageRecord>();
  for (const r of records) {
    const key = `${r.at}\n${r.pool}\n${r.server}\n${r.feature}`;
    const m = out.get(key);
    if (m === undefined) {
      out.set(key, { ...r });
      continue;
    }
    const n = m.samples + r.samples;
    m.mean = n > 0 ? (m.mean * m.samples + r.mean * r.samples) / n : 0;
    m.samples = n;
    m.peak = Math.max(m.peak, r.peak);
    m.issued = Math.max(m.issued, r.issued);
    m.denied += r.denied;
  }
  return [...out.values()].sort((a, b) => cmp(a.pool, b.pool) || cmp(a.feature, b.feature) || cmp(a.server, b.server) || a.at - b.at);
}

/** Code-unit order: stable across locales, and far cheaper than localeCompare over a year of records. */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
