import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { connect } from '../../src/client/license-client.ts';
import { findFeature, parseLmstat } from '../../src/client/lmstat-parser.ts';
import { LICPROXY, REPO, runBin } from '../helpers/cli.ts';
import { startLicd, type LicdSpec } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';

/** Spawns `node bin/licproxy.js ...`; generous bound for a busy 2-core machine. */
const run = (args: string[]) => runBin(LICPROXY, args, { timeout: 60_000 });

type T = ExecutionContext;

async function licd(t: T, spec: LicdSpec = {}) {
  const d = await startLicd(spec);
  t.teardown(d.stop);
  return d;
}

async function inUse(port: number, feature: string): Promise<number> {
  const c = await connect('127.0.0.1', port);
  try {
    return findFeature(parseLmstat(await c.status()), feature)!.inUse;
  } finally {
    c.destroy();
  }
}

const oneLineNoStack = (t: T, stderr: string) => {
  const lines = stderr.trim().split('\n');
  t.is(lines.length, 1, stderr);
  t.regex(lines[0]!, /^licproxy: /);
  t.notRegex(stderr, /\n\s+at /);
};

test.serial('checks out, draws tokens, heartbeats while holding, releases and checks in', async (t) => {
  const d = await licd(t, { name: 'primary', heartbeatTimeout: '1s' });
  // Held past licd's 1s heartbeat_timeout: only the heartbeats keep the session alive.
  const r = await run([
    'checkout', 'LS-DYNA', '-s', `127.0.0.1:${d.ports.license}`, '--count', '2',
    '--tokens', '8', '--token-port', String(d.ports.tokens), '--hold', '1500ms', '--heartbeat', '200ms', '--user', 'alice',
  ]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
  const lines = r.stdout.trim().split('\n');
  t.regex(lines[0]!, /^granted LS-DYNA x2 handle=primary\.\S+ on primary$/);
  t.is(lines[1], 'tokens 8 granted (MPPDYNA)');
  t.is(lines[2], 'holding for 1500ms (heartbeat every 200ms)');
  t.is(lines[3], 'tokens 8 released');
  t.is(lines[4], 'checked in');
  t.is(lines.length, 5);
  t.is(await inUse(d.ports.license, 'LS-DYNA'), 0);
  t.is(await inUse(d.ports.license, 'MPPDYNA'), 0);
});

test.serial('--json prints one object', async (t) => {
  const d = await licd(t, { name: 'primary' });
  const r = await run(['checkout', 'LS-DYNA', '-s', `127.0.0.1:${d.ports.license}`, '--json', '--tokens', '4', '--token-port', String(d.ports.tokens)]);
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, unknown>;
  t.like(out, { server: 'primary', feature: 'LS-DYNA', count: 1, tokens: 4, tokenFeature: 'MPPDYNA', checkedIn: true });
  t.regex(out.handle as string, /^primary\./);
});

test.serial('DENIED exits 2 with one line on stderr', async (t) => {
  const d = await licd(t, { features: [{ name: 'LS-DYNA', count: 1 }] });
  const holder = await connect('127.0.0.1', d.ports.license);
  t.teardown(() => holder.destroy());
  await holder.hello('bob', 'ws2');
  await holder.checkout('LS-DYNA');
  const r = await run(['checkout', 'LS-DYNA', '-s', `127.0.0.1:${d.ports.license}`]);
  t.is(r.code, 2);
  t.is(r.stdout, '');
  oneLineNoStack(t, r.stderr);
  t.is(r.stderr.trim(), 'licproxy: denied LS-DYNA: EXHAUSTED, 0 available');
});

test.serial('an unknown feature and a token port of another server exit 2 naming the ERR code', async (t) => {
  const d = await licd(t, { name: 'a' });
  const other = await licd(t, { name: 'b' });
  const unknown = await run(['checkout', 'NOPE', '-s', `127.0.0.1:${d.ports.license}`]);
  t.is(unknown.code, 2);
  oneLineNoStack(t, unknown.stderr);
  t.regex(unknown.stderr, /ERR UNKNOWN_FEATURE/);

  const split = await run([
    'checkout', 'LS-DYNA', '-s', `127.0.0.1:${d.ports.license}`, '--tokens', '2', '--token-port', String(other.ports.tokens),
  ]);
  t.is(split.code, 2);
  t.regex(split.stdout, /^granted LS-DYNA/);
  oneLineNoStack(t, split.stderr);
  t.regex(split.stderr, /ERR UNKNOWN_HANDLE/);
  // The seat taken before the failure is freed with the connection.
  await waitFor(async () => (await inUse(d.ports.license, 'LS-DYNA')) === 0, { what: 'seat freed' });
});

test.serial('connection refused exits 2', async (t) => {
  const d = await startLicd();
  const port = d.ports.license;
  await d.stop();
  const r = await run(['checkout', 'LS-DYNA', '-s', `127.0.0.1:${port}`]);
  t.is(r.code, 2);
  oneLineNoStack(t, r.stderr);
  t.regex(r.stderr, /ECONNREFUSED/);
});

test.serial('usage errors exit 1 with one line and no stack', async (t) => {
  const cases: [string[], RegExp][] = [
    [['checkout', 'LS-DYNA', '-s', 'nohost'], /-s: expected host:port/],
    [['checkout', 'LS-DYNA', '-s', '127.0.0.1:70000'], /port must be 1\.\.65535/],
    [['checkout', 'LS-DYNA', '-s', '127.0.0.1:1', '--hold', '30'], /--hold expects a duration with a unit/],
    [['checkout', 'LS-DYNA', '-s', '127.0.0.1:1', '--heartbeat', '0s'], /--heartbeat must be at least/],
    [['checkout', 'LS-DYNA', '-s', '127.0.0.1:1', '--count', 'two'], /--count must be a whole number/],
    [['checkout', 'LS DYNA', '-s', '127.0.0.1:1'], /feature must be one word/],
  ];
  for (const [args, message] of cases) {
    const r = await run(args);
    t.is(r.code, 1, args.join(' '));
    oneLineNoStack(t, r.stderr);
    t.regex(r.stderr, message);
  }
  const missing = await run(['checkout', 'LS-DYNA']);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /required option '-s, --server <host:port>'/);
  t.notRegex(missing.stderr, /\n\s+at /);
});

test.serial('SIGINT while holding checks in and exits 0', async (t) => {
  const d = await licd(t);
  const child = spawn(process.execPath, [LICPROXY, 'checkout', 'LS-DYNA', '-s', `127.0.0.1:${d.ports.license}`, '--hold', '1m'], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await waitFor(() => out.includes('holding for 1m'), { timeout: 20_000, what: 'holding' });
  t.is(await inUse(d.ports.license, 'LS-DYNA'), 1);
  child.kill('SIGINT');
  t.is(await exited, 0);
  t.regex(out, /checked in\n$/);
  t.is(await inUse(d.ports.license, 'LS-DYNA'), 0);
});

test.serial('--queue waits for a seat and gets it when the holder checks in', async (t) => {
  const d = await licd(t, { features: [{ name: 'LS-DYNA', count: 1 }] });
  const holder = await connect('127.0.0.1', d.ports.license);
  t.teardown(() => holder.destroy());
  await holder.hello('bob', 'ws2');
  const held = await holder.checkout('LS-DYNA');

  const child = spawn(process.execPath, [LICPROXY, 'checkout', 'LS-DYNA', '-s', `127.0.0.1:${d.ports.license}`, '--queue'], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await waitFor(() => out.includes('queued for LS-DYNA at position 1'), { timeout: 20_000, what: 'queued' });
  await holder.checkin(held.handle);
  t.is(await exited, 0);
  t.regex(out, /^queued for LS-DYNA at position 1\ngranted LS-DYNA x1 handle=t1\.\S+ on t1\nchecked in\n$/);
});
