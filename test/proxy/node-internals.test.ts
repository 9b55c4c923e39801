import { freePort } from '../helpers/ports.ts';
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LICPROXY, REPO } from '../helpers/cli.ts';
import { LineClient, startLicd } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * node-internals.ts: licproxy forwards on raw TCP handles when this Node's internals pass the start-up self-test,
 * and on plain net.Socket when they are switched off (LICPROXY_RAW_HANDLES=0) or behave otherwise; a checkout
 * through the balancer works every way.
 */

/** A preload that makes stream_wrap report read sizes from the wrong slot: the internals exist but misbehave. */
const MISBEHAVE = `
const pb = process.binding;
process.binding = function (name) {
  const b = pb.call(process, name);
  return name === 'stream_wrap' ? { ...b, kReadBytesOrError: b.kLastWriteWasAsync } : b;
};
`;

interface Run {
  lines: Record<string, unknown>[];
  stderr: string;
}

async function checkoutThroughLicproxy(t: ExecutionContext, env: Record<string, string>, preload?: string, workers = 1): Promise<Run> {
  const licd = await startLicd({ features: [{ name: 'CAD', count: 2 }] });
  t.teardown(() => licd.stop());
  const dir = mkdtempSync(join(tmpdir(), 'licproxy-internals-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'licproxy.yaml');
  writeFileSync(
    file,
    [
      `global: { log_level: debug, workers: ${workers} }`,
      'pools:',
      '  lic:',
      `    ports: { license: ${licd.ports.license} }`,
      '    check: { type: tcp, interval: 1s }',
      '    servers:',
      '      - { name: a, host: 127.0.0.1 }',
      'frontends:',
      `  - { name: lic, listen: 127.0.0.1:${await freePort()}, pool: lic, port: license }`,
      '',
    ].join('\n'),
  );
  const nodeArgs: string[] = [];
  if (preload !== undefined) {
    const pre = join(dir, 'preload.mjs');
    writeFileSync(pre, preload);
    nodeArgs.push('--import', pathToFileURL(pre).href);
  }
  const child = spawn(process.execPath, [...nodeArgs, LICPROXY, 'run', '-c', file], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const lines = (): Record<string, unknown>[] =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const listen = await waitFor(
    () => (child.exitCode !== null ? 'exited' : (lines().find((l) => l.msg === 'listening' && l.frontend === 'lic')?.listen as string | undefined)),
    { timeout: 30_000, what: 'the frontend listening' },
  );
  if (listen === 'exited') throw new Error(`licproxy exited ${child.exitCode}: ${stderr}`);
  await waitFor(() => lines().some((l) => l.msg === 'server is UP'), { timeout: 30_000, what: 'server a UP' });
  // Each forwarding process says once how it forwards (workers' log lines are flushed in batches).
  await waitFor(() => lines().filter((l) => 'sockets' in l).length >= workers, { timeout: 10_000, what: 'every process saying how it forwards' });
  const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
  const c = await LineClient.connect(port);
  t.teardown(() => c.destroy());
  t.regex(await c.request('HELLO user=u host=h'), /^OK server=/);
  const granted = await c.request('CHECKOUT CAD');
  const handle = /^GRANTED handle=(\S+) feature=CAD count=1$/.exec(granted)?.[1];
  t.truthy(handle, granted);
  t.is(await c.request(`CHECKIN ${handle}`), 'OK');
  return { lines: lines(), stderr };
}

const sockets = (r: Run): unknown[] => r.lines.filter((l) => 'sockets' in l).map((l) => l.sockets);

test('the self-test passes on this Node: forwarding on raw TCP handles', async (t) => {
  const r = await checkoutThroughLicproxy(t, { LICPROXY_RAW_HANDLES: '' });
  t.deepEqual(sockets(r), ['raw']);
  t.false(r.lines.some((l) => l.level === 40), 'no warning');
});

test('LICPROXY_RAW_HANDLES=0: plain net.Socket, said once, and a checkout works', async (t) => {
  const r = await checkoutThroughLicproxy(t, { LICPROXY_RAW_HANDLES: '0' });
  t.deepEqual(sockets(r), ['net.Socket']);
  const line = r.lines.find((l) => l.sockets === 'net.Socket')!;
  t.is(line.level, 30);
  t.regex(String(line.msg), /forwarding on plain net\.Socket \(LICPROXY_RAW_HANDLES=0\)/);
});

test('internals that misbehave fail the self-test: one warning, plain net.Socket, and a checkout works', async (t) => {
  const r = await checkoutThroughLicproxy(t, { LICPROXY_RAW_HANDLES: '' }, MISBEHAVE);
  t.deepEqual(sockets(r), ['net.Socket']);
  const warnings = r.lines.filter((l) => l.level === 40);
  t.is(warnings.length, 1);
  t.regex(String(warnings[0]!.msg), /did not pass licproxy's self-test .*forwarding on plain net\.Socket/);
  t.notRegex(r.stderr, /DEP0111|DeprecationWarning/);
});

test('process.binding is deprecated (DEP0111): probing it prints no warning, even under --pending-deprecation', async (t) => {
  const r = await checkoutThroughLicproxy(t, { LICPROXY_RAW_HANDLES: '', NODE_OPTIONS: '--pending-deprecation' });
  t.deepEqual(sockets(r), ['raw']);
  t.notRegex(r.stderr, /DEP0111|DeprecationWarning/);
});

test('with workers, each worker passes its own self-test on a listener of its own (not one shared through the primary)', async (t) => {
  // A listener shared through the cluster primary would hand one worker's test connection to another worker, or to
  // a frontend listening on the same address: a failed self-test, and a stray connection counted by the frontend.
  const r = await checkoutThroughLicproxy(t, { LICPROXY_RAW_HANDLES: '' }, undefined, 2);
  t.deepEqual(sockets(r), ['raw', 'raw']);
  t.false(r.lines.some((l) => l.level === 40), 'no warning');
});
