import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { colourLogs } from '../../src/common/logger.ts';
import { LICD } from '../helpers/cli.ts';
import { waitFor } from '../helpers/wait.ts';

test('colours only on a terminal, and never with NO_COLOR set', (t) => {
  t.true(colourLogs({ isTTY: true }, {}));
  t.false(colourLogs({ isTTY: false }, {}));
  t.false(colourLogs({}, {}));
  t.false(colourLogs({ isTTY: true }, { NO_COLOR: '1' }));
  t.true(colourLogs({ isTTY: true }, { NO_COLOR: '' }), 'NO_COLOR counts only when non-empty (no-color.org)');
});

test('--pretty into a pipe: readable lines without one ANSI escape', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lpx-pretty-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'licd.yaml');
  writeFileSync(file, 'server: { name: pretty, ports: { license: 0 } }\nfeatures: [ { name: F, count: 1 } ]\n');
  const child = spawn(process.execPath, [LICD, '-c', file, '--pretty'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '', FORCE_COLOR: '' } });
  const exited = new Promise((r) => child.once('exit', r));
  t.teardown(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  await waitFor(() => /listening/i.test(out), { timeout: 15_000, what: 'a log line' });
  t.regex(out, /INFO/);
  t.false(out.includes('\x1b['), JSON.stringify(out.slice(0, 200)));
});
