/**
 * /stats/usage in a real browser: two days of hourly records (two features, one with a hostile name, a busy
 * afternoon at exhaustion with denials) served by a StatsServer; headless Chromium's DOM holds one SVG chart per
 * feature with its lines and marked peak, no script ran, and a screenshot lands in test/artifacts/usage.png.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { UsageRecorder } from '../../src/stats/history/usage-recorder.ts';
import type { UsageRecord } from '../../src/stats/history/usage-record.ts';
import { HOUR_MS } from '../../src/stats/history/usage-store.ts';
import { ARTIFACTS, CHROMIUM, chromium } from '../helpers/chromium.ts';
import { HOSTILE_NAME, startStats } from '../helpers/stats.ts';

const browserTest = CHROMIUM ? test.serial : test.skip;
if (!CHROMIUM) console.log('usage-browser.test.ts: skipped, no Chromium at /usr/bin/chromium (apt-get install -y chromium)');

/** 48 closed hours ending at the current hour: a daily curve of LS-DYNA (10 seats), full 14:00-16:00 with denials. */
function twoDays(): UsageRecord[] {
  const end = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
  const out: UsageRecord[] = [];
  for (let h = 48; h >= 1; h--) {
    const at = end - h * HOUR_MS;
    const hour = new Date(at).getUTCHours();
    const day = hour >= 8 && hour < 19;
    const busy = hour >= 14 && hour < 16;
    const peak = busy ? 10 : day ? 6 + (hour % 3) : 1;
    const mean = busy ? 9.4 : day ? peak - 1.5 : 0.5;
    for (const [server, share] of [['*', 1], ['alpha', 0.6], ['beta', 0.4]] as const) {
      out.push({ at, pool: 'lsdyna', server, feature: 'LS-DYNA', peak: Math.round(peak * share), mean: mean * share, issued: 10 * (server === '*' ? 1 : share), denied: busy ? (server === 'beta' ? 0 : 3) : 0, samples: 120 });
    }
    out.push({ at, pool: 'lsdyna', server: '*', feature: HOSTILE_NAME, peak: day ? 40 : 8, mean: day ? 30 : 5, issued: 64, denied: 0, samples: 120 });
  }
  return out;
}

async function served(t: ExecutionContext): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lpx-usage-browser-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const history = new UsageRecorder({ dir, keepMs: 90 * 86_400_000 });
  await history.store.append(twoDays());
  const { url } = await startStats(t, { history });
  return url;
}

browserTest('headless Chromium renders /stats/usage: one SVG chart per feature, lines, marked peak, escaped names, no script', async (t) => {
  const url = await served(t);
  const { stdout } = await chromium(['--dump-dom', `${url}/stats/usage`]);
  t.is(stdout.match(/<svg class="usage-chart"/g)?.length, 2, 'LS-DYNA and the hostile-named feature');
  for (const cls of ['issued', 'mean', 'mean-area', 'peak']) t.is(stdout.match(new RegExp(`<path class="${cls}"`, 'g'))?.length, 2, cls);
  t.is(stdout.match(/<circle class="peak-max"/g)?.length, 2);
  t.true((stdout.match(/<circle class="exhausted"/g)?.length ?? 0) >= 2, 'hours at 10 of 10 marked');
  t.true((stdout.match(/<rect class="denied"/g)?.length ?? 0) >= 2, 'hours with denials marked');
  t.regex(stdout, /peak 10\/10 at \d{4}-\d\d-\d\d 1[45]:00:00Z/);
  t.true(stdout.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  t.false(stdout.includes(HOSTILE_NAME));
  t.false(/<script/i.test(stdout));
  const text = stdout.replace(/<[^>]*>/g, ' ');
  for (const s of ['pool total', 'alpha', 'beta', 'JSON', 'CSV']) t.true(text.includes(s), s);
});

browserTest('screenshot of /stats/usage at 1000x1100 into test/artifacts/usage.png', async (t) => {
  const url = await served(t);
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, 'usage.png');
  rmSync(file, { force: true });
  await chromium([`--screenshot=${file}`, '--window-size=1000,1100', '--hide-scrollbars', `${url}/stats/usage`]);
  t.true(existsSync(file));
  t.true(statSync(file).size > 10_000, 'a non-trivial image');
  t.log(`screenshot: ${file}`);
});
