/**
 * The scale test, in CI: 30,000 held license connections through one licproxy with 4 workers (each under
 * the 20,000-descriptor limit a process has here), loaders and licd spread over processes. bench/held.ts does the
 * work and checks: every connection held and heartbeating, the stats agree, a SIGKILLed worker loses exactly its
 * own connections, is replaced, new clients are served, licd's seats match. Its report goes to the test log.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { REPO } from '../helpers/cli.ts';

test('30,000 held connections through 4 workers; a killed worker loses only its own and is replaced', async (t) => {
  t.timeout(480_000);
  const dir = mkdtempSync(join(tmpdir(), 'licproxy-held-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'held.md');
  const args = ['--import', 'tsx', 'bench/held.ts', '--connections', '30000', '--workers', '4', '--heartbeat', '3s', '--no-widen', '--out', out];
  const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (text += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (text += s));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGINT');
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  const report = (() => {
    try {
      return readFileSync(out, 'utf8');
    } catch {
      return '';
    }
  })();
  t.log(report || text.slice(-4000));
  t.is(code, 0, text.slice(-2000));
  t.regex(report, /30,000/);
});
