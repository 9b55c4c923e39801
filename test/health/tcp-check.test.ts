import test from 'ava';
import { TcpCheck } from '../../src/health/tcp-check.ts';
import { checkConfig, closedPort, listen, silentServer } from './support.ts';

const run = (check: TcpCheck, host: string, ports: Record<string, number>) => check.run({ host, ports }, new AbortController().signal);

test('passes when the check port accepts', async (t) => {
  const server = await listen();
  t.teardown(() => server.close());
  const before = Date.now();
  const r = await run(new TcpCheck(checkConfig()), '127.0.0.1', { main: server.port });
  const after = Date.now();
  t.true(r.ok);
  t.is(r.reason, 'ok');
  t.true(r.durationMs >= 0 && r.durationMs <= after - before + 1, `duration ${r.durationMs}ms`);
  t.true(r.at >= before && r.at <= after, 'stamped with the time of the check');
});

test('refused connect fails with "connect refused"', async (t) => {
  const r = await run(new TcpCheck(checkConfig()), '127.0.0.1', { main: await closedPort() });
  t.false(r.ok);
  t.is(r.reason, 'connect refused');
});

test('ports: [license, tokens] fails when one of the two is closed, passes when both accept', async (t) => {
  const license = await listen();
  const tokens = await listen();
  t.teardown(() => Promise.all([license.close(), tokens.close()]));
  const check = new TcpCheck(checkConfig({ port: 'license', ports: ['license', 'tokens'] }));

  const both = await run(check, '127.0.0.1', { license: license.port, tokens: tokens.port });
  t.true(both.ok);
  t.is(tokens.accepted.length, 1, 'the tokens port was really probed');

  const dead = await closedPort();
  const r = await run(check, '127.0.0.1', { license: license.port, tokens: dead });
  t.false(r.ok);
  t.is(r.reason, 'tokens: connect refused');
});

test('a port name the server does not have fails with its name', async (t) => {
  const r = await run(new TcpCheck(checkConfig({ port: 'license', ports: ['license', 'vendor'] })), '127.0.0.1', {
    license: await closedPort(),
  });
  t.false(r.ok);
  t.regex(r.reason, /no port named vendor|connect refused/);
});

test('the probe socket is closed after the check (the server sees its end)', async (t) => {
  let ended = 0;
  const server = await listen((s) => s.on('close', () => ended++));
  t.teardown(() => server.close());
  const check = new TcpCheck(checkConfig());
  for (let i = 0; i < 5; i++) t.true((await run(check, '127.0.0.1', { main: server.port })).ok);
  const { waitFor } = await import('../helpers/wait.ts');
  await waitFor(() => ended === 5, { what: 'five closed probe sockets' });
  t.pass();
});

test('an aborted signal cancels the check at once', async (t) => {
  const server = await silentServer();
  t.teardown(() => server.close());
  const ac = new AbortController();
  ac.abort();
  const r = await new TcpCheck(checkConfig({ timeout: 5000 })).run({ host: '127.0.0.1', ports: { main: server.port } }, ac.signal);
  t.false(r.ok);
  t.is(r.reason, 'check cancelled');
});
