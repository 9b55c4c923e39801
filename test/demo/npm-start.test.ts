import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../helpers/cli.ts';
import { waitFor } from '../helpers/wait.ts';

// The README's quick start, as a new user runs it: a copy of the tree, `npm ci`, `npm start`, a checkout with
// tokens through the printed port, the stats page, then Ctrl-C: exit 0 and no process left behind.
test('npm start runs the demo from a fresh copy and Ctrl-C stops everything', async (t) => {
  t.timeout(240_000);
  const dir = mkdtempSync(join(tmpdir(), 'licproxy-clone-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // git ls-files: exactly what a clone holds (tracked files, as in the working tree), without node_modules.
  const files = execFileSync('git', ['ls-files'], { cwd: REPO, encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const f of files) cpSync(join(REPO, f), join(dir, f), { recursive: true });
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: dir, stdio: 'ignore', timeout: 180_000 });

  // Its own process group, as in a terminal, so Ctrl-C (SIGINT to the group) reaches npm and licproxy alike.
  const demo = spawn('npm', ['start'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  demo.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  demo.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => demo.once('exit', (code, signal) => r({ code, signal })));
  t.teardown(() => {
    try {
      process.kill(-demo.pid!, 'SIGKILL');
    } catch {}
  });

  let ended = '';
  void exited.then((e) => (ended = `npm start ended early: ${JSON.stringify(e)}`));
  const banner = await waitFor(
    () => {
      if (ended) throw new Error(`${ended}\n${out}`);
      return /stats\s+(http:\/\/\S+\/stats)/.exec(out);
    },
    { timeout: 120_000, what: 'the demo banner' },
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}\noutput so far:\n${out}`);
  });
  const checkoutLine = await waitFor(() => /node bin\/licproxy\.js checkout (.*) --hold/.exec(out), { what: 'the checkout hint' });
  const pids = [...out.matchAll(/^  licd \S+\s+pid (\d+)/gm)].map((m) => Number(m[1]));
  t.is(pids.length, 3, 'three licd servers');

  const args = ['bin/licproxy.js', 'checkout', ...checkoutLine[1]!.split(' ')];
  const co = execFileSync(process.execPath, args, { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  t.regex(co, /granted LS-DYNA x1 handle=primary\./);
  t.regex(co, /tokens 8 granted/);
  t.regex(co, /checked in/);

  const stats = await fetch(banner[1]!).then((r) => r.text());
  t.regex(stats, /primary/);
  t.regex(stats, /secondary/);
  const proxyPid = ((await fetch(banner[1]!.replace(/\/stats$/, '/stats.json')).then((r) => r.json())) as { process: { pid: number } }).process.pid;

  process.kill(-demo.pid!, 'SIGINT');
  const end = await exited;
  // npm itself dies of the SIGINT it shares with its child (a shell shows 130); licproxy must stop cleanly.
  t.true(end.code === 0 || end.signal === 'SIGINT', JSON.stringify(end));
  await waitFor(() => [proxyPid, ...pids].every((pid) => !alive(pid)), { timeout: 10_000, what: 'licproxy and every licd to exit' });
  t.regex(out, /"msg":"stopped"/, 'licproxy logged its graceful stop');
  t.notRegex(out, /\n\s+at /, 'no stack trace');
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
