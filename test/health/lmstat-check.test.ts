import test from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LmstatCheck } from '../../src/health/lmstat-check.ts';
import type { CheckConfig } from '../../src/config/proxy-config.ts';
import { LineClient, startLicd, type FeatureSpec } from '../helpers/licd.ts';
import { checkConfig, closedPort, listen, silentServer, statusServer } from './support.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/lmstat/', import.meta.url));
const signal = () => new AbortController().signal;

function lmstat(over: Partial<CheckConfig> = {}) {
  return new LmstatCheck(checkConfig({ type: 'lmstat', port: 'license', timeout: 2000, ...over }));
}

async function licd(t: { teardown(fn: () => unknown): void }, features?: FeatureSpec[]) {
  const server = await startLicd(features ? { features } : {});
  t.teardown(server.stop);
  return { host: server.host, ports: { license: server.ports.license, tokens: server.ports.tokens } };
}

test('passes against a real licd and reports usage and MASTER', async (t) => {
  const target = await licd(t);
  const r = await lmstat({ requireFeatures: ['LS-DYNA', 'MPPDYNA'] }).run(target, signal());
  t.true(r.ok, r.reason);
  t.is(r.reason, 'ok');
  t.true(r.master, 'a standalone licd is its own master');
  const dyna = r.features?.find((f) => f.name === 'LS-DYNA');
  t.like(dyna, { issued: 10, inUse: 0 });
  t.is(r.redundancy, undefined);
});

test('issued / in use follow a real checkout', async (t) => {
  const target = await licd(t);
  const client = await LineClient.connect(target.ports.license);
  t.teardown(() => client.destroy());
  t.regex(await client.request('HELLO user=alice host=ws12'), /^OK/);
  t.regex(await client.request('CHECKOUT LS-DYNA count=3'), /^GRANTED/);
  const check = lmstat();
  const held = await check.run(target, signal());
  t.like(held.features?.find((f) => f.name === 'LS-DYNA'), { issued: 10, inUse: 3 });
  client.destroy();
  const { waitFor } = await import('../helpers/wait.ts');
  await waitFor(
    async () => (await check.run(target, signal())).features?.find((f) => f.name === 'LS-DYNA')?.inUse === 0,
    { what: 'the seats freed after the client left' },
  );
  t.pass();
});

test('require_features: a missing feature fails with "feature NOPE missing"', async (t) => {
  const target = await licd(t);
  const r = await lmstat({ requireFeatures: ['LS-DYNA', 'NOPE'] }).run(target, signal());
  t.false(r.ok);
  t.is(r.reason, 'feature NOPE missing');
  t.true(r.master, 'usage and master are recorded on failure too');
});

test('require_features: an expired feature fails with "feature LS-DYNA expired"', async (t) => {
  const target = await licd(t, [
    { name: 'LS-DYNA', count: 5, expires: '2020-01-01' },
    { name: 'MPPDYNA', count: 64, kind: 'tokens' },
  ]);
  const r = await lmstat({ requireFeatures: ['MPPDYNA', 'LS-DYNA'] }).run(target, signal());
  t.false(r.ok);
  t.is(r.reason, 'feature LS-DYNA expired');
  t.like(r.features?.find((f) => f.name === 'LS-DYNA'), { expired: true, expiry: '1-jan-2020' });
  // Not required: expired but the server is healthy for what it is asked to serve.
  t.true((await lmstat({ requireFeatures: ['MPPDYNA'] }).run(target, signal())).ok);
});

test('ports: [license, tokens] makes a closed token port fail the lmstat check', async (t) => {
  const target = await licd(t);
  const r = await lmstat({ ports: ['license', 'tokens'] }).run({ ...target, ports: { ...target.ports, tokens: await closedPort() } }, signal());
  t.false(r.ok);
  t.is(r.reason, 'tokens: connect refused');
});

test('a triad member that is not master is healthy, not master, and its pair status is recorded', async (t) => {
  const server = await statusServer(() => readFileSync(FIXTURES + 'licd_triad.txt', 'utf8'));
  t.teardown(() => server.close());
  const r = await lmstat().run({ host: '127.0.0.1', ports: { license: server.port } }, signal());
  t.true(r.ok, r.reason);
  t.false(r.master);
  t.is(r.redundancy, 'paired and synced');
});

test('a server that reports DOWN fails with "not UP"', async (t) => {
  const server = await statusServer(() => 'License server status: 27111@secondary\nsecondary: license server DOWN v1.0\nRedundancy: triad, peer not available\nEND\n');
  t.teardown(() => server.close());
  const r = await lmstat().run({ host: '127.0.0.1', ports: { license: server.port } }, signal());
  t.false(r.ok);
  t.is(r.reason, 'not UP');
  t.is(r.redundancy, 'peer not available');
});

test('an ERR answer fails with the error line', async (t) => {
  const server = await statusServer(() => 'ERR NO_QUORUM\n');
  t.teardown(() => server.close());
  const r = await lmstat().run({ host: '127.0.0.1', ports: { license: server.port } }, signal());
  t.false(r.ok);
  t.is(r.reason, 'ERR NO_QUORUM');
});

test('an answer cut before END fails, a silent server times out, a closed port is refused', async (t) => {
  const cut = await statusServer(() => 'License server status: 1@x\nx: license server UP (MASTER) v1.0\n');
  const silent = await silentServer();
  t.teardown(() => Promise.all([cut.close(), silent.close()]));
  // Only the silent server's check has a short timeout: on a loaded machine the others' answers can take longer.
  const patient = lmstat({ timeout: 10_000 });
  t.is((await patient.run({ host: '127.0.0.1', ports: { license: cut.port } }, signal())).reason, 'closed before END of status');
  t.is((await lmstat({ timeout: 300 }).run({ host: '127.0.0.1', ports: { license: silent.port } }, signal())).reason, 'timeout after 300ms');
  t.is((await patient.run({ host: '127.0.0.1', ports: { license: await closedPort() } }, signal())).reason, 'connect refused');
});

test('it sends exactly one STATUS line', async (t) => {
  const got: string[] = [];
  const server = await listen((s) => {
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      got.push(d);
      s.end('License server status: 1@x\nx: license server UP (MASTER) v1.0\nEND\n');
    });
  });
  t.teardown(() => server.close());
  t.true((await lmstat().run({ host: '127.0.0.1', ports: { license: server.port } }, signal())).ok);
  t.deepEqual(got, ['STATUS\n']);
});
