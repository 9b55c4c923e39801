import test from 'ava';
import { SendExpectCheck } from '../../src/health/send-expect-check.ts';
import { waitFor } from '../helpers/wait.ts';
import { checkConfig, closedPort, listen, silentServer } from './support.ts';

const signal = () => new AbortController().signal;

test('passes when the answer matches expect, and sends check.send first', async (t) => {
  const got: string[] = [];
  const server = await listen((s) => {
    s.setEncoding('utf8');
    s.once('data', (d: string) => {
      got.push(d);
      // In two pieces: the match must be found across chunks.
      s.write('220 lic');
      setTimeout(() => s.end('ense ready\n'), 20);
    });
  });
  t.teardown(() => server.close());
  const check = new SendExpectCheck(checkConfig({ type: 'send_expect', send: 'PING\n', expect: '^220 license ready$' }));
  const r = await check.run({ host: '127.0.0.1', ports: { main: server.port } }, signal());
  t.true(r.ok, r.reason);
  t.deepEqual(got, ['PING\n']);
});

test('fails when the server closes without a match', async (t) => {
  const server = await listen((s) => {
    s.once('data', () => s.end('500 no\n'));
  });
  t.teardown(() => server.close());
  const check = new SendExpectCheck(checkConfig({ type: 'send_expect', send: 'PING\n', expect: '^220' }));
  const r = await check.run({ host: '127.0.0.1', ports: { main: server.port } }, signal());
  t.false(r.ok);
  t.is(r.reason, 'closed before /^220/ matched');
});

test('a server that never answers fails with "timeout after 200ms" and its socket is closed', async (t) => {
  let closed = 0;
  const server = await listen((s) => s.on('close', () => closed++));
  t.teardown(() => server.close());
  const check = new SendExpectCheck(checkConfig({ type: 'send_expect', send: 'PING\n', expect: 'OK', timeout: 200 }));
  const r = await check.run({ host: '127.0.0.1', ports: { main: server.port } }, signal());
  t.false(r.ok);
  t.is(r.reason, 'timeout after 200ms');
  t.true(r.durationMs >= 190, `took ${r.durationMs}ms, not less than the timeout`);
  await waitFor(() => closed === 1, { what: 'the check socket closed' });
});

test('refused connect', async (t) => {
  const check = new SendExpectCheck(checkConfig({ type: 'send_expect', send: 'PING\n', expect: 'OK' }));
  const r = await check.run({ host: '127.0.0.1', ports: { main: await closedPort() } }, signal());
  t.is(r.reason, 'connect refused');
});

test('the answer buffer is bounded: an endless answer fails instead of growing', async (t) => {
  const server = await listen((s) => {
    const chunk = 'x'.repeat(16 * 1024);
    const pump = () => {
      while (!s.destroyed && s.write(chunk));
      if (!s.destroyed) s.once('drain', pump);
    };
    pump();
  });
  t.teardown(() => server.close());
  const check = new SendExpectCheck(checkConfig({ type: 'send_expect', send: null, expect: 'never', timeout: 5000 }));
  const r = await check.run({ host: '127.0.0.1', ports: { main: server.port } }, signal());
  t.false(r.ok);
  t.regex(r.reason, /^answer longer than \d+ bytes$/);
});

test('a silent server with a banner expect (no send) times out', async (t) => {
  const server = await silentServer();
  t.teardown(() => server.close());
  const check = new SendExpectCheck(checkConfig({ type: 'send_expect', send: null, expect: '^220', timeout: 150 }));
  const r = await check.run({ host: '127.0.0.1', ports: { main: server.port } }, signal());
  t.is(r.reason, 'timeout after 150ms');
});
