/**
 * The usage history's pieces without a balancer: the line format (escaping, torn lines), the store (append, read,
 * a torn last line tolerated and ended by the next append), compaction (days older than keep dropped whole), the
 * recorder (peak / mean / issued per bucket from new check results only, pool totals, denials as deltas, the open
 * bucket lost on a crash but written on a graceful stop) and the query string (bad parameters: one line).
 */
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { compactUsage } from '../../src/stats/history/usage-compaction.ts';
import { parseUsageQuery } from '../../src/stats/history/usage-query.ts';
import { decodeRecord, encodeRecord, mergeRecords, type UsageRecord } from '../../src/stats/history/usage-record.ts';
import { UsageRecorder } from '../../src/stats/history/usage-recorder.ts';
import { HOUR_MS, UsageStore } from '../../src/stats/history/usage-store.ts';
import { renderUsageCsv, renderUsageJson } from '../../src/stats/history/render-usage-data.ts';
import { renderUsagePage } from '../../src/stats/history/render-usage-page.ts';
import { HOSTILE_NAME, pool, scriptedSnapshot, server } from '../helpers/stats.ts';
import type { StatsSnapshot } from '../../src/stats/snapshot.ts';

const DAY = 86_400_000;
const T = Date.UTC(2026, 11, 7, 10, 0, 0);

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'lpx-usage-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function rec(over: Partial<UsageRecord>): UsageRecord {
  return { at: T, pool: 'lic', server: 'a', feature: 'F', peak: 5, mean: 2.5, issued: 10, denied: 0, samples: 4, ...over };
}

test('a record survives encode/decode, names with tabs, newlines and % included', (t) => {
  const r = rec({ feature: 'odd\tname\n%20<x>', mean: 1 / 3 });
  const line = encodeRecord(r, HOUR_MS);
  t.is(line.split('\n').length, 2, 'one line');
  t.deepEqual(decodeRecord(line.slice(0, -1), HOUR_MS), { ...r, mean: 0.33 });
  t.is(decodeRecord('494\tlic\ta\tF\t5\t2.5\t10', HOUR_MS), null, 'a torn line reads as nothing');
  t.is(decodeRecord('garbage', HOUR_MS), null);
});

test('two records of the same hour merge: higher peak, mean weighted by samples, denials added', (t) => {
  const [m] = mergeRecords([rec({ peak: 3, mean: 2, samples: 1, denied: 1 }), rec({ peak: 7, mean: 4, samples: 3, denied: 2 })]);
  t.like(m, { peak: 7, mean: 3.5, samples: 4, denied: 3, issued: 10 });
});

test('store: append + read; a torn last line is skipped and the next append starts on a new line', async (t) => {
  const dir = tempDir(t);
  const store = new UsageStore(dir);
  await store.append([rec({}), rec({ at: T + HOUR_MS, peak: 6 })]);
  const [file] = readdirSync(dir);
  t.is(file, 'usage-2026-12-07.tsv');
  t.true(readFileSync(path.join(dir, file!), 'utf8').startsWith('#licproxy-usage v1 bucket_ms=3600000\n'));
  // A crash in the middle of a write: half a line, no newline.
  appendFileSync(path.join(dir, file!), `${Math.floor((T + 2 * HOUR_MS) / HOUR_MS)}\tlic\ta\tF\t9\t`);
  t.is((await store.read(T, T + DAY)).length, 2, 'the torn line is not read');
  await store.append([rec({ at: T + 3 * HOUR_MS, peak: 8 })]);
  const read = await store.read(T, T + DAY);
  t.deepEqual(read.map((r) => r.peak), [5, 6, 8], 'the record after the torn line is intact');
  t.deepEqual((await store.read(T + HOUR_MS, T + 3 * HOUR_MS)).map((r) => r.peak), [6], '[from, to) range');
});

test('compaction drops whole days older than keep and nothing newer', async (t) => {
  const dir = tempDir(t);
  const store = new UsageStore(dir);
  const now = T;
  await store.append([rec({ at: now - 100 * DAY }), rec({ at: now - 91 * DAY }), rec({ at: now - 89 * DAY }), rec({ at: now })]);
  t.is((await store.files()).length, 4);
  const gone = await compactUsage(store, 90 * DAY, now);
  t.is(gone.length, 2);
  const left = await store.read(0, now + DAY);
  t.deepEqual(left.map((r) => r.at), [now - 89 * DAY, now]);
  writeFileSync(path.join(dir, 'notes.txt'), 'not ours');
  await compactUsage(store, DAY, now + 10 * DAY);
  t.deepEqual(readdirSync(dir), ['notes.txt'], 'a foreign file is left alone');
});

/** A snapshot of pool `lic` with servers a and b reporting `inUse` seats of F (of 10 each), checked at `at`. */
function snap(at: number, a: number, b: number, denied = 0): StatsSnapshot {
  const s = scriptedSnapshot();
  const check = { ok: true, reason: 'ok', durationMs: 1, at };
  s.pools = [pool('lic', [
    server('a', { lastCheck: check, features: [{ name: 'F', inUse: a, issued: 10 }] }),
    server('b', { lastCheck: check, features: [{ name: 'F', inUse: b, issued: 10 }] }),
  ], { checkouts: [{ server: 'a', feature: 'F', granted: 0, denied, retriedSaved: 0, queueWaits: 0 }] })];
  return s;
}

test('recorder: per bucket peak, mean and issued from new check results; pool total; denials as deltas', async (t) => {
  const dir = tempDir(t);
  let now = T;
  const r = new UsageRecorder({ dir, keepMs: 90 * DAY, bucketMs: 1000, now: () => now });
  r.sample(snap(now, 2, 1));
  r.sample(snap(now, 9, 9)); // the same check result again: not counted twice
  now += 100;
  r.sample(snap(now, 4, 3, 2));
  now += 100;
  r.sample(snap(now, 6, 2, 5));
  now += 1000; // the bucket closes at the next sample
  r.sample(snap(now, 1, 1, 5));
  const { records } = await r.query({ from: T - 1000, to: T + 5000 });
  const first = records.filter((x) => x.at === T);
  t.like(first.find((x) => x.server === 'a'), { peak: 6, mean: 4, issued: 10, samples: 3, denied: 5 });
  t.like(first.find((x) => x.server === 'b'), { peak: 3, mean: 2, samples: 3 });
  t.like(first.find((x) => x.server === '*'), { peak: 8, mean: 6, issued: 20, denied: 5 }, 'independent servers: the total is the sum');
  t.like(records.find((x) => x.at === T + 1000 && x.server === 'a'), { peak: 1, denied: 0 }, 'no new denial in the second bucket');
  const onDisk = await r.store.read(0, T + DAY);
  t.is(onDisk.filter((x) => x.at === T).length, 3, 'the closed bucket is on disk');
  t.is(onDisk.filter((x) => x.at === T + 1000).length, 0, 'the open bucket is not (a crash loses it)');
  await r.stop();
  t.is((await r.store.read(0, T + DAY)).filter((x) => x.at === T + 1000).length, 3, 'a graceful stop writes the open bucket');
});

test('recorder: a redundant set counts its seats once in the pool total', async (t) => {
  const dir = tempDir(t);
  const r = new UsageRecorder({ dir, keepMs: DAY, bucketMs: 1000, now: () => T });
  const s = snap(T, 4, 4);
  s.pools[0]!.mode = 'master';
  r.sample(s);
  const { records } = await r.query({ from: T - 1000, to: T + 1000 });
  t.like(records.find((x) => x.server === '*'), { peak: 4, issued: 10 });
});

test('query string: defaults, filters, and one line for each bad parameter', (t) => {
  const now = T;
  const ok = parseUsageQuery('/api/usage?feature=F&pool=lic&from=2026-12-01&to=2026-12-07T12:00Z', now);
  t.deepEqual(ok, { ok: true, format: null, query: { from: Date.UTC(2026, 11, 1), to: Date.UTC(2026, 11, 7, 12), feature: 'F', pool: 'lic' } });
  t.like(parseUsageQuery('/api/usage', now), { ok: true, query: { from: now - 7 * DAY, to: now } });
  for (const [q, msg] of [
    ['from=yesterday', /^from: expected an ISO 8601 time/],
    ['to=2026-13-45', /^to: expected/],
    ['from=2026-12-07&to=2026-12-01', /must be before/],
    ['colour=red', /^unknown query parameter "colour"/],
    ['feature=a&feature=b', /given twice/],
    ['format=xml', /^format: expected json or csv/],
    ['pool=', /^pool: empty/],
    ['feature=%01', /control character/],
  ] as const) {
    const r = parseUsageQuery(`/api/usage?${q}`, now);
    t.false(r.ok, q);
    if (!r.ok) {
      t.regex(r.message, msg, q);
      t.false(r.message.includes('\n'), 'one line');
    }
  }
});

test('renderers: JSON series, CSV without formula injection, SVG page with escaped names and marked peaks', (t) => {
  const records = mergeRecords([
    rec({ pool: 'lic', server: '*', feature: HOSTILE_NAME, peak: 10, issued: 10 }),
    rec({ pool: 'lic', server: '*', feature: HOSTILE_NAME, at: T + HOUR_MS, peak: 4 }),
    rec({ pool: 'lic', server: '=cmd|x', feature: HOSTILE_NAME, denied: 3 }),
  ]);
  const result = { bucketMs: HOUR_MS, openBucket: T + HOUR_MS, records };
  const q = { from: T, to: T + DAY };
  const json = JSON.parse(renderUsageJson(q, result)) as { series: { server: string; points: { partial?: boolean; peak: number }[] }[] };
  t.is(json.series.length, 2);
  t.true(json.series.find((s) => s.server === '*')!.points[1]!.partial);
  const csv = renderUsageCsv(result);
  t.true(csv.startsWith('time,pool,server,feature,peak,mean,issued,denied,samples,partial\n'));
  t.true(csv.includes(",'=cmd|x,"), 'a name starting with = is defused');
  const html = renderUsagePage(q, result);
  t.false(html.includes(HOSTILE_NAME));
  t.false(/<script/i.test(html));
  t.is(html.match(/<svg class="usage-chart"/g)?.length, 1);
  t.true(html.includes('class="peak-max"'));
  t.true(html.includes('class="exhausted"'), 'the hour at 10 of 10 is marked');
  t.true(html.includes('peak 10/10 at 2026-12-07 10:00:00Z'));
});
