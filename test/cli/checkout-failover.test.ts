/**
 * `licproxy checkout --hold` through a balancer whose serving licd dies: the client reconnects to the next server,
 * which never issued its handle (two standalone licd processes, no replication). The license is gone, and the client
 * must say so at once and exit 2, as a real license client stops; `--recheckout` checks out anew instead.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { connect } from '../../src/client/license-client.ts';
import { findFeature, parseLmstat } from '../../src/client/lmstat-parser.ts';
import { SEATS, spawnServer, startBalancer } from '../failover/support.ts';
import { LICPROXY, REPO } from '../helpers/cli.ts';
import { waitFor } from '../helpers/wait.ts';

async function inUse(port: number): Promise<number> {
  const c = await connect('127.0.0.1', port);
  try {
    return findFeature(parseLmstat(await c.status()), 'LS-DYNA')!.inUse;
  } finally {
    c.destroy();
  }
}

/** `tokens`: the primary also has MPPDYNA tokens, and the client draws that many on its token port (direct). */
async function setUp(t: ExecutionContext, extra: string[], tokens?: number) {
  const features = tokens === undefined ? SEATS : [...SEATS, { name: 'MPPDYNA', count: 64, kind: 'tokens' as const }];
  const primary = await spawnServer(t, { name: 'primary', features });
  const secondary = await spawnServer(t, { name: 'secondary' });
  if (tokens !== undefined) extra = [...extra, '--tokens', String(tokens), '--token-port', String(primary.ports.tokens)];
  const app = await startBalancer(
    t,
    `pools:
  lmx:
    mode: failover
    check: { type: tcp, interval: 100ms, fast_interval: 50ms, down_interval: 100ms, timeout: 500ms, rise: 1, fall: 1 }
    servers:
      - { name: primary,   address: 127.0.0.1:${primary.ports.license} }
      - { name: secondary, address: 127.0.0.1:${secondary.ports.license}, tier: 1 }
frontends:
  - { name: lmx, listen: 127.0.0.1:0, pool: lmx }
`,
  );
  await waitFor(() => app.runtime.snapshot().pools[0]!.servers.every((s) => s.status === 'UP'), { what: 'both UP' });
  const args = ['checkout', 'LS-DYNA', '-s', `127.0.0.1:${app.runtime.port('lmx')}`, '--hold', '5m', '--heartbeat', '30s', ...extra];
  const child = spawn(process.execPath, [LICPROXY, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let code: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve((code = c))));
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  await waitFor(() => out.includes('holding for 5m'), { timeout: 20_000, what: 'holding' });
  t.regex(out, /handle=primary\./);
  primary.child.kill('SIGKILL');
  return { child, exited, exitCode: () => code, out: () => out, err: () => err, secondary };
}

test('a failover to a server that does not know the handle: "license lost" at once, exit 2', async (t) => {
  const { exitCode, out, err } = await setUp(t, []);
  // Far sooner than the 5m hold or the 30s heartbeat: the resume itself tells.
  t.is(await waitFor(() => (exitCode() !== undefined ? { code: exitCode() } : undefined), { timeout: 20_000, what: 'the client to exit' }).then((x) => x.code), 2);
  t.regex(err(), /^licproxy: hold: license lost: secondary does not know handle primary\.\w+ after the failover/m);
  t.notRegex(err(), /\n\s+at /);
  t.notRegex(out(), /resumed nothing/);
});

test('tokens held on a server that dies: "license lost" (the token connection closed, or the handle unknown after the failover), exit 2', async (t) => {
  const { exitCode, out, err } = await setUp(t, [], 2);
  t.regex(out(), /^tokens 2 granted \(MPPDYNA\)$/m);
  t.is(await waitFor(() => (exitCode() !== undefined ? { code: exitCode() } : undefined), { timeout: 20_000, what: 'the client to exit' }).then((x) => x.code), 2);
  // Whichever of the two connections tells first, the operator reads that the license is lost, never a bare
  // "connection closed".
  t.regex(err(), /^licproxy: hold: license lost: /m);
  t.log(err().trim());
  t.notRegex(err(), /\n\s+at /);
});

test('--recheckout: checks out anew on the server it landed on, then checks that one in', async (t) => {
  const { child, exited, out, secondary } = await setUp(t, ['--recheckout']);
  await waitFor(() => /handle=secondary\./.test(out()), { timeout: 20_000, what: 'a new checkout on secondary' });
  t.regex(out(), /license lost: secondary does not know handle primary\.\w+ after the failover \(the seat is gone\); checking out anew/);
  t.is(await inUse(secondary.ports.license), 1);
  child.kill('SIGINT');
  t.is(await exited, 0);
  t.regex(out(), /checked in\n$/);
  t.is(await inUse(secondary.ports.license), 0);
});

test('--recheckout with --tokens is a usage error', async (t) => {
  const child = spawn(process.execPath, [LICPROXY, 'checkout', 'LS-DYNA', '-s', '127.0.0.1:1', '--tokens', '2', '--recheckout'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  t.is(code, 1);
  t.regex(err, /--recheckout cannot be used with --tokens/);
});
