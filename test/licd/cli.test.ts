import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LICD_BIN, LineClient, spawnLicd, startLicd } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';

/** Runs licd to completion (for failures that exit at once); bounded by a kill after 15 s. */
function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [LICD_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const guard = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('exit', (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr });
    });
  });
}

function tempFile(t: { teardown(fn: () => void): void }, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'licd-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, text);
  return file;
}

test('a bad license file: exit 1, every error line on stderr, no stack', async (t) => {
  const file = tempFile(t, 'server:\n  name: a.b\n  ports: { license: 1, tokens: 2 }\nfeatures:\n  - { name: X, count: -2 }\n  - { name: X, count: 1 }\n');
  const r = await run(['-c', file]);
  t.is(r.code, 1);
  t.true(r.stderr.includes(`${file}:2:9 server.name: "a.b" is not valid`), r.stderr);
  t.true(r.stderr.includes(`${file}:5:23 features[0].count: must be a whole number >= 0, got -2`), r.stderr);
  t.true(r.stderr.includes(`${file}:6:13 features[1].name: duplicate feature name "X"`), r.stderr);
  t.notRegex(r.stderr, /\n\s+at /, 'no stack trace');
  t.is(r.stdout, '');
});

test('a missing file and a bad option exit 1; a port in use exits 2', async (t) => {
  const missing = await run(['-c', '/nonexistent/licd.yaml']);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /^licd: \/nonexistent\/licd\.yaml: cannot read configuration: no such file\n$/);
  const bad = await run(['--bogus']);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /unknown option '--bogus'/);
  const busy = await startLicd();
  t.teardown(busy.stop);
  const file = tempFile(t, `server: { name: b, ports: { license: ${busy.ports.license}, tokens: 0 } }\nfeatures: []\n`);
  const inUse = await run(['-c', file]);
  t.is(inUse.code, 2);
  t.regex(inUse.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${busy.ports.license}: address in use`));
  t.notRegex(inUse.stderr, /\n\s+at /);
});

test('SIGHUP re-reads the file: a lowered count keeps held seats and denies until usage is below it', async (t) => {
  const licd = await spawnLicd({ features: [{ name: 'LS-DYNA', count: 3 }] });
  t.teardown(licd.stop);
  const c = await LineClient.connect(licd.ports.license);
  t.teardown(() => c.destroy());
  const handles: string[] = [];
  for (let i = 0; i < 3; i++) handles.push(/handle=(\S+)/.exec(await c.request('CHECKOUT LS-DYNA'))![1]!);

  licd.rewrite({ features: [{ name: 'LS-DYNA', count: 1 }, { name: 'NEW', count: 4 }] });
  licd.child.kill('SIGHUP');
  const usage = async () => {
    c.send('STATUS');
    return (await c.readUntil('END')).find((l) => l.startsWith('Users of LS-DYNA:'));
  };
  await waitFor(async () => (await usage()) === 'Users of LS-DYNA:  (Total of 1 license issued;  Total of 3 licenses in use)', { timeout: 10_000, what: 'reload' });
  t.is(await c.request('CHECKOUT LS-DYNA'), 'DENIED feature=LS-DYNA reason=EXHAUSTED available=0');
  t.regex(await c.request('CHECKOUT NEW count=4'), /^GRANTED/, 'a feature added by the reload is served');
  t.is(await c.request(`CHECKIN ${handles.pop()}`), 'OK');
  t.is(await c.request(`CHECKIN ${handles.pop()}`), 'OK');
  t.is(await c.request('CHECKOUT LS-DYNA'), 'DENIED feature=LS-DYNA reason=EXHAUSTED available=0', '1 in use = count 1');
  t.is(await c.request(`CHECKIN ${handles.pop()}`), 'OK');
  t.regex(await c.request('CHECKOUT LS-DYNA'), /^GRANTED/);

  // An invalid file is refused: the running one stays, the error is logged.
  writeFileSync(licd.file, 'server: { name: x }\nfeatures: nope\n');
  licd.child.kill('SIGHUP');
  await waitFor(() => licd.stdout().includes('reload failed'), { timeout: 10_000, what: 'reload failure logged' });
  t.regex(licd.stdout(), /reload failed, keeping the running license file: .*licd\.yaml:\d+:\d+ /);
  t.is(await usage(), 'Users of LS-DYNA:  (Total of 1 license issued;  Total of 1 license in use)');
});

test('SIGTERM: listeners close, sessions end, exit 0', async (t) => {
  const licd = await spawnLicd();
  t.teardown(licd.stop);
  const c = await LineClient.connect(licd.ports.license);
  t.teardown(() => c.destroy());
  t.regex(await c.request('CHECKOUT LS-DYNA'), /^GRANTED/);
  licd.child.kill('SIGTERM');
  await c.closed;
  t.is(await licd.exited, 0);
  const msgs = licd.stdout().trim().split('\n').map((l) => (JSON.parse(l) as { msg: string }).msg);
  t.true(msgs.some((m) => /^OUT: "LS-DYNA" unknown@127\.0\.0\.1 1 license \(t1\.[0-9a-f]+\)$/.test(m)), msgs.join('\n'));
  t.true(msgs.some((m) => /^IN: "LS-DYNA" unknown@127\.0\.0\.1 1 license \(t1\.[0-9a-f]+\) \(shutdown\)$/.test(m)), msgs.join('\n'));
});
