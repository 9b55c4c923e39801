/** `/api/usage` (JSON) and `/api/usage.csv`: the usage records, grouped per pool, server and feature. */
import type { UsageQuery, UsageResult } from './usage-recorder.ts';
import type { UsageRecord } from './usage-record.ts';

export interface UsageSeries {
  pool: string;
  /** `*`: the pool's total. */
  server: string;
  feature: string;
  records: UsageRecord[];
}

/** Records (sorted by pool, feature, server, time, as mergeRecords leaves them) cut into one series per key. */
export function toSeries(records: readonly UsageRecord[]): UsageSeries[] {
  const out: UsageSeries[] = [];
  let cur: UsageSeries | null = null;
  for (const r of records) {
    if (cur === null || cur.pool !== r.pool || cur.server !== r.server || cur.feature !== r.feature) {
      out.push((cur = { pool: r.pool, server: r.server, feature: r.feature, records: [] }));
    }
    cur.records.push(r);
  }
  return out;
}

export function renderUsageJson(q: UsageQuery, result: UsageResult): string {
  return JSON.stringify({
    bucketMs: result.bucketMs,
    from: new Date(q.from).toISOString(),
    to: new Date(q.to).toISOString(),
    series: toSeries(result.records).map((s) => ({
      pool: s.pool,
      server: s.server,
      feature: s.feature,
      points: s.records.map((r) => ({
        at: new Date(r.at).toISOString(),
        peak: r.samples > 0 ? r.peak : null,
        mean: r.samples > 0 ? Math.round(r.mean * 100) / 100 : null,
        issued: r.samples > 0 ? r.issued : null,
        denied: r.denied,
        samples: r.samples,
        ...(r.at === result.openBucket ? { partial: true } : {}),
      })),
    })),
  });
}

export const USAGE_CSV_COLUMNS = ['time', 'pool', 'server', 'feature', 'peak', 'mean', 'issued', 'denied', 'samples', 'partial'];

export function renderUsageCsv(result: UsageResult): string {
  const lines = [USAGE_CSV_COLUMNS.join(',')];
  for (const r of result.records) {
    const has = r.samples > 0;
    lines.push([
      new Date(r.at).toISOString(), csv(r.pool), csv(r.server), csv(r.feature),
      has ? r.peak : '', has ? Math.round(r.mean * 100) / 100 : '', has ? r.issued : '', r.denied, r.samples,
      r.at === result.openBucket ? 1 : 0,
    ].join(','));
  }
  return `${lines.join('\n')}\n`;
}

/** RFC 4180 quoting; a leading =, +, - or @ is prefixed with ' so a spreadsheet never runs a name as a formula. */
function csv(s: string): string {
  const safe = /^[=+\-@]/.test(s) ? `'${s}` : s;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
