/**
 * The stats page in a real browser: headless Chromium loads /stats, the rendered DOM holds the tables, and a
 * screenshot lands in test/artifacts/stats.png (ignored by git) for a human look. Skipped where Chromium is absent.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { HOSTILE_NAME, startStats } from '../helpers/stats.ts';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) => existsSync(p));
const ARTIFACTS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
const browserTest = CHROMIUM ? test.serial : test.skip;
if (!CHROMIUM) console.log('browser.test.ts: skipped, no Chromium at /usr/bin/chromium (apt-get install -y chromium)');

function chromium(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const profile = mkdtempSync(path.join(tmpdir(), 'lpx-chromium-'));
  const flags = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-dev-shm-usage', `--user-data-dir=${profile}`,
  ];
  return new Promise((resolve, reject) => {
    execFile(CHROMIUM!, [...flags, ...args], { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      rmSync(profile, { recursive: true, force: true });
      if (err) reject(new Error(`chromium failed: ${err.message}\n${stderr.slice(-2000)}`));
      else resolve({ stdout, stderr });
    });
  });
}

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
