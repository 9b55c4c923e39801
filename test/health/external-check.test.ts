import test from 'ava';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExternalCheck } from '../../src/health/external-check.ts';
import type { CheckConfig } from '../../src/config/proxy-config.ts';
import { settles, waitFor } from '../helpers/wait.ts';
import { checkConfig } from './support.ts';

const SCRIPT = fileURLToPath(new URL('../fixtures/external-check.sh', import.meta.url));
const signal = () => new AbortController().signal;

function external(command: string[], over: Partial<CheckConfig> = {}) {
  return new ExternalCheck(checkConfig({ type: 'external', command, timeout: 5000, port: 'license', ...over }));
}
const target = (host = '127.0.0.1') => ({ host, ports: { license: 27002, tokens: 27003 } });

/** A killed grandchild stays a zombie until init reaps it (slowly in some containers): dead all the same. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

test('exit 0 with lmstat -a output passes and yields features and the master flag', async (t) => {
  const check = external([SCRIPT, 'print', 'lmstat_app1.txt', '0']);
  const r = await check.run(target('host2.domain.net'), signal());
  t.true(r.ok, r.reason);
  t.is(r.reason, 'ok');
  t.true(r.master, 'host2.domain.net reports (MASTER)');
  const f1 = r.features?.find((f) => f.name === 'feature1');
  t.deepEqual(f1 && { issued: f1.issued, inUse: f1.inUse }, { issued: 1814, inUse: 1206 });
  t.true((r.features?.length ?? 0) > 50);

  // The same output read for another member of the triad: UP, healthy, not master.
  const other = await check.run(target('host-1.domain.net'), signal());
  t.true(other.ok);
  t.false(other.master);
});

test('lmstat output is judged: a required feature missing fails, present passes', async (t) => {
  const missing = await external([SCRIPT, 'print', 'lmstat_app1.txt', '0'], { requireFeatures: ['feature1', 'NOPE'] }).run(
    target('host2.domain.net'),
    signal(),
  );
  t.false(missing.ok);
  t.is(missing.reason, 'feature NOPE missing');
  t.truthy(missing.features, 'usage is still recorded on failure');

  const present = await external([SCRIPT, 'print', 'lmstat_app1.txt', '0'], { requireFeatures: ['feature1'] }).run(
    target('host2.domain.net'),
    signal(),
  );
  t.true(present.ok, present.reason);
});

test('lmstat output of a server that cannot be reached fails with "not UP"', async (t) => {
  const r = await external([SCRIPT, 'print', 'lmstat_server_down.txt', '0']).run(target('host3'), signal());
  t.false(r.ok);
  t.regex(r.reason, /^not UP: Cannot connect to license server system/);
  t.false(r.master);
});

test('exit 2 fails with "exit 2: <first line of stderr>"', async (t) => {
  const r = await external([SCRIPT, 'fail', '2', 'lmgrd is not running: License server machine is down']).run(target(), signal());
  t.false(r.ok);
  t.is(r.reason, 'exit 2: lmgrd is not running: License server machine is down');
});

test('non-lmstat output with exit 0 passes as is', async (t) => {
  const r = await external([SCRIPT, 'ok']).run(target(), signal());
  t.true(r.ok);
  t.is(r.features, undefined);
});

test('placeholders {host} {port} {port:NAME} are substituted, argv is passed without a shell', async (t) => {
  const args = ['{port}@{host}', '{port:tokens}', '-c', '$HOME;`id`', 'x{host}y', 'two words'];
  const r = await external([SCRIPT, 'echo', ...args]).run(target('lic.example.com'), signal());
  t.false(r.ok);
  t.is(r.reason, 'exit 1: args|27002@lic.example.com|27003|-c|$HOME;`id`|xlic.example.comy|two words');
  const unknown = await external([SCRIPT, 'echo', '{port:vendor}']).run(target(), signal());
  t.false(unknown.ok);
  t.is(unknown.reason, 'no port named vendor');
});

test('a command that runs past the timeout is killed with its whole process group', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lpx-ext-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pidFile = join(dir, 'pids');
  const check = external([SCRIPT, 'sleep', pidFile], { timeout: 700 });
  // The command sleeps 30 s: the check must give up at its timeout rather than wait for it.
  const r = await settles(check.run(target(), signal()), { timeout: 20_000, what: 'the check to give up at its timeout' });
  t.false(r.ok);
  t.is(r.reason, 'timeout after 700ms');
  const killedAt = Date.now();
  const pids = readFileSync(pidFile, 'utf8').trim().split(/\s+/).map(Number);
  t.is(pids.length, 2, 'the shell and its sleeping child');
  await waitFor(() => pids.every((p) => !alive(p)), { timeout: 20_000, what: 'shell and sleep killed' });
  t.log(`check ${r.durationMs}ms, processes gone ${Date.now() - killedAt}ms after it returned`);
});

test('a command that does not exist fails with a one-line reason', async (t) => {
  const r = await external(['/nonexistent/lmutil', 'lmstat']).run(target(), signal());
  t.false(r.ok);
  t.is(r.reason, 'cannot run /nonexistent/lmutil: ENOENT');
});

test('stdout capture is bounded: a command printing megabytes does not make the check buffer them', async (t) => {
  // 8 MB of output: read and dropped beyond 1 MB; the command is not blocked on a full pipe.
  const r = await external(['/bin/sh', '-c', 'head -c 8000000 /dev/zero | tr "\\0" x; exit 4']).run(target(), signal());
  t.false(r.ok);
  t.true(r.reason.startsWith('exit 4: xxx'));
  t.true(r.reason.length <= 160);
});

test('ports: every listed port must accept too, as for the other check types (the command alone passing is not enough)', async (t) => {
  const open = createServer((s) => s.destroy());
  open.listen(0, '127.0.0.1');
  await once(open, 'listening');
  t.teardown(() => open.close());
  const closed = createServer();
  closed.listen(0, '127.0.0.1');
  await once(closed, 'listening');
  const closedPort = (closed.address() as { port: number }).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const ports = { license: (open.address() as { port: number }).port, tokens: closedPort };
  const r = await external([SCRIPT, 'ok'], { ports: ['license', 'tokens'] }).run({ host: '127.0.0.1', ports }, signal());
  t.false(r.ok);
  t.regex(r.reason, /^tokens: connect refused/);
  const both = await external([SCRIPT, 'ok'], { ports: ['license'] }).run({ host: '127.0.0.1', ports }, signal());
  t.true(both.ok, both.reason);
  const failing = await external([SCRIPT, 'fail', '3', 'down'], { ports: ['license'] }).run({ host: '127.0.0.1', ports }, signal());
  t.is(failing.reason, 'exit 3: down', 'the command\'s own failure is what the operator sees');
});
