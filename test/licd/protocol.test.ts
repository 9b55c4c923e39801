import test from 'ava';
import { publicHandle } from '../../src/licd/handles.ts';
import { LineClient, licdForTest, type InProcessLicd } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';

const FEATURES = [
  { name: 'LS-DYNA', version: '2025.1', count: 3, expires: '2099-12-31' },
  { name: 'PRE-POST', count: 1 },
  { name: 'OLD', count: 5, expires: '2020-01-31' },
  { name: 'MPPDYNA', count: 64, kind: 'tokens' as const },
];

async function setup(t: { teardown(fn: () => unknown): void }, spec = {}): Promise<{ licd: InProcessLicd; client: () => Promise<LineClient> }> {
  const { licd, connect } = await licdForTest(t, { features: FEATURES, ...spec });
  return { licd, client: () => connect() };
}

function inUse(licd: InProcessLicd, feature: string): number {
  return licd.server.status().features.find((f) => f.name === feature)!.inUse;
}

const HANDLE = /^GRANTED handle=(t1\.[0-9a-f]+) feature=LS-DYNA count=(\d+)$/;

test('HELLO answers the server name and protocol version; verbs are case-insensitive', async (t) => {
  const { client } = await setup(t);
  const c = await client();
  t.is(await c.request('HELLO user=alice host=ws12 display=/dev/pts/1 pid=4242'), 'OK server=t1 proto=1');
  t.is(await c.request('hello user=bob host=ws13'), 'OK server=t1 proto=1');
  t.is(await c.request('HeArTbEaT'), 'OK');
  t.is(await c.request('HEARTBEAT'), 'OK');
});

test('HELLO with missing or bad arguments is BAD_ARGUMENT', async (t) => {
  const { client } = await setup(t);
  const c = await client();
  for (const line of ['HELLO', 'HELLO user=alice', 'HELLO host=ws', 'HELLO user=a host=b pid=x', 'HELLO user=a host=b color=red', 'HELLO user=a user=b host=c', 'HELLO user= host=b', 'HELLO alice ws12']) {
    t.is(await c.request(line), 'ERR BAD_ARGUMENT', line);
  }
});

test('CHECKOUT grants a handle <server>.<hex>; CHECKIN frees it; identity from HELLO shows in STATUS', async (t) => {
  const { licd, client } = await setup(t);
  const c = await client();
  await c.request('HELLO user=alice host=ws12 display=/dev/pts/1');
  const m = HANDLE.exec(await c.request('CHECKOUT LS-DYNA count=2 version=2024.3'));
  t.truthy(m);
  t.is(m![2], '2');
  t.is(inUse(licd, 'LS-DYNA'), 2);
  const json = JSON.parse(await c.request('STATUS json'));
  t.is(json.server, 't1');
  t.true(json.up);
  t.true(json.master);
  t.deepEqual(json.sessions[0].handles, [publicHandle(m![1]!)], 'status shows the public id, never the handle');
  t.is(json.sessions[0].user, 'alice');
  t.is(await c.request(`CHECKIN ${m![1]}`), 'OK');
  t.is(inUse(licd, 'LS-DYNA'), 0);
  t.is(await c.request(`CHECKIN ${m![1]}`), 'ERR UNKNOWN_HANDLE', 'a handle is checked in once');
});

test('CHECKOUT without HELLO is granted to user "unknown" on the client address', async (t) => {
  const { licd, client } = await setup(t);
  const c = await client();
  t.regex(await c.request('CHECKOUT PRE-POST'), /^GRANTED handle=t1\.[0-9a-f]+ feature=PRE-POST count=1$/);
  const s = licd.server.status();
  t.is(s.sessions[0]!.user, 'unknown');
  t.is(s.sessions[0]!.host, '127.0.0.1');
});

test('CHECKOUT denials: EXHAUSTED, COUNT, VERSION, KIND; and error codes UNKNOWN_FEATURE, EXPIRED, BAD_ARGUMENT', async (t) => {
  const { licd, client } = await setup(t);
  const c = await client();
  t.regex(await c.request('CHECKOUT LS-DYNA count=2'), HANDLE);
  t.is(await c.request('CHECKOUT LS-DYNA count=2'), 'DENIED feature=LS-DYNA reason=EXHAUSTED available=1');
  t.is(await c.request('CHECKOUT LS-DYNA count=4'), 'DENIED feature=LS-DYNA reason=COUNT available=1');
  t.is(await c.request('CHECKOUT LS-DYNA version=2025.10'), 'DENIED feature=LS-DYNA reason=VERSION available=1');
  t.is(await c.request('CHECKOUT MPPDYNA count=4'), 'DENIED feature=MPPDYNA reason=KIND available=64');
  t.is(await c.request('CHECKOUT NOPE'), 'ERR UNKNOWN_FEATURE');
  t.is(await c.request('CHECKOUT ls-dyna'), 'ERR UNKNOWN_FEATURE', 'feature names are case-sensitive');
  t.is(await c.request('CHECKOUT OLD'), 'ERR EXPIRED');
  for (const line of [
    'CHECKOUT',
    'CHECKOUT LS-DYNA PRE-POST',
    'CHECKOUT LS-DYNA count=0',
    'CHECKOUT LS-DYNA count=-1',
    'CHECKOUT LS-DYNA count=1.5',
    'CHECKOUT LS-DYNA count=abc',
    'CHECKOUT LS-DYNA count=9999999999',
    'CHECKOUT LS-DYNA version=v1',
    'CHECKOUT LS-DYNA version=1..2',
    'CHECKOUT LS-DYNA queue=2',
    'CHECKOUT LS-DYNA colour=red',
    'CHECKOUT LS-DYNA count=1 count=1',
    'CHECKOUT count=1 LS-DYNA',
    'CHECKOUT =1 LS-DYNA',
  ]) {
    t.is(await c.request(line), 'ERR BAD_ARGUMENT', line);
  }
  t.is(inUse(licd, 'LS-DYNA'), 2, 'no denial or error changed the count');
});

test('CHECKOUT version: an older or equal version is granted, compared numerically', async (t) => {
  const { client } = await setup(t);
  const c = await client();
  t.regex(await c.request('CHECKOUT LS-DYNA version=2025.1'), HANDLE);
  t.regex(await c.request('CHECKOUT LS-DYNA version=2025'), HANDLE);
  t.regex(await c.request('CHECKOUT LS-DYNA version=2024.12'), HANDLE);
  t.is(await c.request('CHECKOUT LS-DYNA version=2025.1.1'), 'DENIED feature=LS-DYNA reason=VERSION available=0');
});

test('CHECKIN and RESUME of foreign or unknown handles are UNKNOWN_HANDLE; bad forms are BAD_ARGUMENT', async (t) => {
  const { client } = await setup(t);
  const a = await client();
  const b = await client();
  const h = HANDLE.exec(await a.request('CHECKOUT LS-DYNA'))![1]!;
  t.is(await b.request(`CHECKIN ${h}`), 'ERR UNKNOWN_HANDLE', 'another connection cannot check in my handle');
  t.is(await b.request('CHECKIN other.1a'), 'ERR UNKNOWN_HANDLE');
  t.is(await b.request('CHECKIN'), 'ERR BAD_ARGUMENT');
  t.is(await b.request(`CHECKIN ${h} ${h}`), 'ERR BAD_ARGUMENT');
  t.is(await b.request(`RESUME ${h}`), 'ERR UNKNOWN_HANDLE', 'no redundancy: nothing to resume');
  t.is(await b.request('RESUME'), 'ERR BAD_ARGUMENT');
  t.is(await a.request(`CHECKIN ${h}`), 'OK');
});

test('unknown verbs, token verbs on the license port and empty lines are BAD_COMMAND', async (t) => {
  const { client } = await setup(t);
  const c = await client();
  for (const line of ['FOO', 'TOKENS t1.1 4', 'RELEASE 4', '', '   ', 'CHECK OUT LS-DYNA', '\t']) {
    t.is(await c.request(line), 'ERR BAD_COMMAND', JSON.stringify(line));
  }
  t.is(await c.request('HEARTBEAT now'), 'ERR BAD_ARGUMENT');
  t.is(await c.request('STATUS xml'), 'ERR BAD_ARGUMENT');
  t.is(await c.request('HELLO user=a\x01 host=b'), 'ERR BAD_ARGUMENT', 'control characters');
});

test('STATUS ends in END; STATUS json is one JSON line', async (t) => {
  const { client } = await setup(t);
  const c = await client();
  c.send('STATUS');
  const lines = await c.readUntil('END');
  t.is(lines[0], `License server status: ${c.socket.remotePort}@t1`);
  t.is(lines.at(-1), 'END');
  const j = JSON.parse(await c.request('status JSON'));
  t.deepEqual(
    j.features.map((f: { name: string; issued: number; inUse: number; expires: string | null; expired: boolean }) => [f.name, f.issued, f.inUse, f.expires, f.expired]),
    [
      ['LS-DYNA', 3, 0, '2099-12-31', false],
      ['PRE-POST', 1, 0, null, false],
      ['OLD', 5, 0, '2020-01-31', true],
      ['MPPDYNA', 64, 0, null, false],
    ],
  );
});

test('QUIT answers OK, closes, and frees the seats', async (t) => {
  const { licd, client } = await setup(t);
  const c = await client();
  t.regex(await c.request('CHECKOUT LS-DYNA count=3'), HANDLE);
  t.is(await c.request('QUIT'), 'OK');
  await c.closed;
  t.is(inUse(licd, 'LS-DYNA'), 0);
});

test('seats are freed when the connection ends: FIN, RST', async (t) => {
  const { licd, client } = await setup(t);
  const a = await client();
  const b = await client();
  t.regex(await a.request('CHECKOUT LS-DYNA'), HANDLE);
  t.regex(await b.request('CHECKOUT LS-DYNA count=2'), HANDLE);
  t.is(inUse(licd, 'LS-DYNA'), 3);
  a.end();
  await waitFor(() => inUse(licd, 'LS-DYNA') === 2, { what: 'FIN to free 1 seat' });
  b.reset();
  await waitFor(() => inUse(licd, 'LS-DYNA') === 0, { what: 'RST to free 2 seats' });
  t.is(licd.server.status().connections.license, 0);
});

test('a line over 4096 bytes is ERR LINE_TOO_LONG and closes; 4096 bytes is fine', async (t) => {
  const { licd, client } = await setup(t);
  const ok = await client();
  t.is(await ok.request('HEARTBEAT' + ' '.repeat(4096 - 9)), 'OK', 'exactly 4096 bytes (trailing spaces trimmed)');
  t.is(await ok.request('HEARTBEAT' + ' '.repeat(4096 - 9) + '\r'), 'OK', 'CRLF does not count');
  const c = await client();
  t.regex(await c.request('CHECKOUT LS-DYNA'), HANDLE);
  c.write('X'.repeat(5000));
  t.is(await c.next(), 'ERR LINE_TOO_LONG');
  await c.closed;
  await waitFor(() => inUse(licd, 'LS-DYNA') === 0, { what: 'seat freed after LINE_TOO_LONG' });
  const d = await client();
  d.send('HEARTBEAT' + ' '.repeat(4096 - 8));
  t.is(await d.next(), 'ERR LINE_TOO_LONG', '4097 bytes');
  await d.closed;
});

test('pipelined requests in one write are answered in order', async (t) => {
  const { client } = await setup(t);
  const c = await client();
  c.write('HELLO user=u host=h\r\nHEARTBEAT\nCHECKOUT PRE-POST\nCHECKOUT PRE-POST\nQUIT\n');
  t.is(await c.next(), 'OK server=t1 proto=1');
  t.is(await c.next(), 'OK');
  t.regex(await c.next(), /^GRANTED handle=t1\.[0-9a-f]+ feature=PRE-POST count=1$/);
  t.is(await c.next(), 'DENIED feature=PRE-POST reason=EXHAUSTED available=0');
  t.is(await c.next(), 'OK');
  await c.closed;
});
