import test from 'ava';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { readFirstLine, serverOfHandleLine, type FirstLineError } from '../../../src/proxy/affinity/first-line.ts';

interface Outcome {
  err: FirstLineError | null;
  head: Buffer;
  line: string;
}

async function withReader(t: import('ava').ExecutionContext, timeoutMs: number, drive: (c: Socket) => void): Promise<Outcome> {
  const server: Server = createServer();
  t.teardown(() => server.close());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const got = new Promise<Outcome>((resolve) => {
    server.once('connection', (s: Socket) => {
      t.teardown(() => s.destroy());
      readFirstLine(s, timeoutMs, (err, head, line) => resolve({ err, head, line }));
    });
  });
  const c = connect(port, '127.0.0.1');
  t.teardown(() => c.destroy());
  await once(c, 'connect');
  drive(c);
  return got;
}

test('the first line is returned with every byte read, split across chunks', async (t) => {
  const o = await withReader(t, 2000, (c) => {
    c.write('TOKENS prim');
    setImmediate(() => c.write('ary.1a 8\r\nRELEASE 2\n'));
  });
  t.is(o.err, null);
  t.is(o.line, 'TOKENS primary.1a 8');
  t.true(o.head.toString().startsWith('TOKENS primary.1a 8\r\n'));
});

test('a line over the bound is refused without waiting for its end', async (t) => {
  const o = await withReader(t, 2000, (c) => c.write('x'.repeat(5000)));
  t.is(o.err, 'LINE_TOO_LONG');
});

test('a silent client times out', async (t) => {
  const o = await withReader(t, 100, () => {});
  t.is(o.err, 'TIMEOUT');
});

test('a client closing before a line is reported', async (t) => {
  const o = await withReader(t, 2000, (c) => c.end('TOK'));
  t.is(o.err, 'CLOSED');
});

const lines: Array<[string, string | undefined]> = [
  ['TOKENS primary.1a 8', 'primary'],
  ['tokens secondary.ff 1', 'secondary'],
  ['RESUME site-a.node.3 ', 'site-a.node'],
  ['CHECKIN tertiary.2', 'tertiary'],
  ['HELLO user=a host=b', undefined],
  ['TOKENS nodot 8', undefined],
  ['TOKENS .1a 8', undefined],
  ['TOKENS', undefined],
  ['', undefined],
];
for (const [line, server] of lines) {
  test(`handle in "${line}" names ${server ?? 'no server'}`, (t) => t.is(serverOfHandleLine(line), server));
}
