import test from 'ava';
import { connect } from '../../src/client/license-client.ts';
import type { LmstatStatus } from '../../src/client/lmstat-parser.ts';
import { LICPROXY, runBin } from '../helpers/cli.ts';
import { startLicd } from '../helpers/licd.ts';
import { publicHandle } from '../../src/licd/handles.ts';

/** Spawns `node bin/licproxy.js ...`; generous bound for a busy 2-core machine. */
const run = (args: string[]) => runBin(LICPROXY, args, { timeout: 60_000 });

test.serial('prints the lmstat text of a licd server (without the END line)', async (t) => {
  const d = await startLicd({ name: 'primary' });
  t.teardown(d.stop);
  const holder = await connect('127.0.0.1', d.ports.license);
  t.teardown(() => holder.destroy());
  await holder.hello('alice', 'ws12');
  const grant = await holder.checkout('LS-DYNA', { count: 3 });

  const r = await run(['lmstat', '-s', `127.0.0.1:${d.ports.license}`]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
  const lines = r.stdout.split('\n');
  t.is(lines[0], `License server status: ${d.ports.license}@primary`);
  t.is(lines[1], 'primary: license server UP (MASTER) v1.0');
  t.true(lines.includes('Users of LS-DYNA:  (Total of 10 licenses issued;  Total of 3 licenses in use)'));
  t.true(lines.some((l) => l.includes(`(primary/${d.ports.license} ${publicHandle(grant.handle)}), start `) && l.endsWith(', 3 licenses')));
  t.false(lines.includes('END'));
  t.true(r.stdout.endsWith('\n'));
});

test.serial('--json prints the parsed status', async (t) => {
  const d = await startLicd({ name: 'primary' });
  t.teardown(d.stop);
  const holder = await connect('127.0.0.1', d.ports.license);
  t.teardown(() => holder.destroy());
  await holder.hello('alice', 'ws12');
  await holder.checkout('LS-DYNA');

  const r = await run(['lmstat', '-s', `127.0.0.1:${d.ports.license}`, '--json']);
  t.is(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout) as LmstatStatus;
  t.is(s.master, 'primary');
  t.true(s.up);
  t.deepEqual(s.servers, [{ host: 'primary', port: d.ports.license, up: true, master: true, version: 'v1.0' }]);
  t.deepEqual(s.vendors.map((v) => [v.name, v.up]), [['licd', true]]);
  const dyna = s.features.find((f) => f.name === 'LS-DYNA')!;
  t.like(dyna, { issued: 10, inUse: 1, version: '2025.1', vendor: 'licd' });
  t.is(dyna.users[0]!.user, 'alice');
  t.like(s.features.find((f) => f.name === 'MPPDYNA'), { issued: 64, inUse: 0 });
});

test.serial('connection refused exits 2, bad arguments exit 1, each with one line and no stack', async (t) => {
  const d = await startLicd();
  const port = d.ports.license;
  await d.stop();
  const results = await Promise.all([
    run(['lmstat', '-s', `127.0.0.1:${port}`]),
    run(['lmstat', '-s', 'localhost']),
    run(['lmstat', '-s', '127.0.0.1:1', '--timeout', '5']),
  ]);
  t.deepEqual(results.map((r) => r.code), [2, 1, 1]);
  t.regex(results[0]!.stderr, /^licproxy: connect to 127\.0\.0\.1:\d+: connection refused \(nothing listens there\) \[ECONNREFUSED\]\n$/);
  t.regex(results[1]!.stderr, /^licproxy: -s: expected host:port .*\n$/);
  t.regex(results[2]!.stderr, /^licproxy: --timeout expects a duration with a unit.*\n$/);
  for (const r of results) t.is(r.stdout, '');
});
