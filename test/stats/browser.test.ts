/**
 * The stats page in a real browser: headless Chromium loads /stats, the rendered DOM holds the tables, and a
 * screenshot lands in test/artifacts/stats.png (ignored by git) for a human look. Skipped where Chromium is absent.
 */
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { ARTIFACTS, CHROMIUM, chromium } from '../helpers/chromium.ts';
import { HOSTILE_NAME, startStats } from '../helpers/stats.ts';

const browserTest = CHROMIUM ? test.serial : test.skip;
if (!CHROMIUM) console.log('browser.test.ts: skipped, no Chromium at /usr/bin/chromium (apt-get install -y chromium)');

browserTest('headless Chromium renders /stats: server names, statuses, no script ran', async (t) => {
  const { url } = await startStats(t);
  const { stdout } = await chromium(['--dump-dom', `${url}/stats`]);
  const text = stdout.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ');
  for (const s of ['Pool lsdyna', 'primary', 'secondary', 'tertiary', 'drained', 'flex1', 'UP 1/3', 'DOWN 1/2', 'DRAIN', 'MAINT', 'NOLB', 'no check', 'paired and synced']) {
    t.true(text.includes(s), s);
  }
  t.is(stdout.match(/<table class="pool">/g)?.length, 3);
  // The hostile name is text in the DOM (re-serialised escaped), never an element.
  t.true(stdout.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  t.false(stdout.includes(HOSTILE_NAME));
  t.false(/<script/i.test(stdout));
});

browserTest('screenshot of /stats at 1400x900 into test/artifacts/stats.png', async (t) => {
  const { url } = await startStats(t);
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, 'stats.png');
  rmSync(file, { force: true });
  await chromium([`--screenshot=${file}`, '--window-size=1400,900', '--hide-scrollbars', `${url}/stats`]);
  t.true(existsSync(file));
  t.true(statSync(file).size > 10_000, 'a non-trivial image');
  t.log(`screenshot: ${file}`);
});
