import test, { type ExecutionContext } from 'ava';
import { createServer, type Server, type Socket } from 'node:net';
import {
  LicenseConnectionError,
  LicenseDeniedError,
  LicenseError,
  LicenseProtocolError,
  LicenseTimeoutError,
} from '../../src/client/client-errors.ts';
import { LicenseClient, connect } from '../../src/client/license-client.ts';
import { findFeature, parseLmstat } from '../../src/client/lmstat-parser.ts';
import { TokenClient, openTokens } from '../../src/client/token-client.ts';
import { publicHandle } from '../../src/licd/handles.ts';
import { startLicd, type LicdSpec } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';

type T = ExecutionContext;

async function licd(t: T, spec: LicdSpec = {}) {
  const d = await startLicd(spec);
  t.teardown(d.stop);
  return d;
}

async function client(t: T, port: number, user = 'alice'): Promise<LicenseClient> {
  const c = await connect('127.0.0.1', port, { timeout: 5000 });
  t.teardown(() => c.destroy());
  await c.hello(user, 'ws1');
  return c;
}

/** A protocol-speaking fake for what licd cannot be made to do (never answer, answer out of band). */
async function fakeServer(t: T, onLine: (line: string, socket: Socket) => void): Promise<{ port: number; server: Server; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
    let buf = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        onLine(line, socket);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as { port: number }).port, server, sockets };
}

test('hello, checkout, status shows the user, checkin frees the seat', async (t) => {
  const d = await licd(t, { name: 'primary' });
  const c = await connect('127.0.0.1', d.ports.license);
  t.teardown(() => c.destroy());
  t.deepEqual(await c.hello('alice', 'ws12', { display: '/dev/pts/1', pid: 42 }), { server: 'primary', proto: '1' });
  t.is(c.serverName, 'primary');

  const grant = await c.checkout('LS-DYNA', { count: 2 });
  t.regex(grant.handle, /^primary\./);
  t.is(grant.feature, 'LS-DYNA');
  t.is(grant.count, 2);

  const status = parseLmstat(await c.status());
  t.is(status.master, 'primary');
  const f = findFeature(status, 'LS-DYNA')!;
  t.is(f.issued, 10);
  t.is(f.inUse, 2);
  t.is(f.users.length, 1);
  t.is(f.users[0]!.user, 'alice');
  t.is(f.users[0]!.handle, publicHandle(grant.handle), 'status shows the public id of the handle');
  t.is(f.users[0]!.count, 2);

  await c.heartbeat();
  await c.checkin(grant.handle);
  t.is(findFeature(parseLmstat(await c.status()), 'LS-DYNA')!.inUse, 0);

  const json = (await c.statusJson()) as { server: string; features: { name: string; inUse: number }[] };
  t.is(json.server, 'primary');
  t.is(json.features.find((x) => x.name === 'LS-DYNA')!.inUse, 0);

  await c.quit();
  t.false(c.connected);
});

test('DENIED rejects with LicenseDeniedError carrying reason and availability', async (t) => {
  const d = await licd(t, { features: [{ name: 'LS-DYNA', count: 1 }] });
  const a = await client(t, d.ports.license);
  const b = await client(t, d.ports.license, 'bob');
  await a.checkout('LS-DYNA');
  const err = await t.throwsAsync(b.checkout('LS-DYNA'), { instanceOf: LicenseDeniedError });
  t.is(err!.code, 'DENIED');
  t.is(err!.feature, 'LS-DYNA');
  t.is(err!.reason, 'EXHAUSTED');
  t.is(err!.available, 0);
  // The connection stays usable after a denial.
  await b.heartbeat();
});

test('protocol errors are typed with the ERR code', async (t) => {
  const d = await licd(t);
  const c = await client(t, d.ports.license);
  const unknownHandle = await t.throwsAsync(c.checkin('t1.ffff'), { instanceOf: LicenseProtocolError });
  t.is(unknownHandle!.code, 'UNKNOWN_HANDLE');
  t.regex(unknownHandle!.message, /^CHECKIN t1\.ffff answered ERR UNKNOWN_HANDLE/);
  const unknownFeature = await t.throwsAsync(c.checkout('NOPE'), { instanceOf: LicenseProtocolError });
  t.is(unknownFeature!.code, 'UNKNOWN_FEATURE');
  await c.heartbeat();
});

test('arguments that would change the command are refused before sending', async (t) => {
  const d = await licd(t);
  const c = await client(t, d.ports.license);
  for (const bad of ['LS DYNA', 'LS-DYNA\nCHECKIN x', 'a=b', '']) {
    const err = await t.throwsAsync(c.checkout(bad), { instanceOf: LicenseError });
    t.is(err!.code, 'BAD_REQUEST');
  }
  await t.throwsAsync(c.checkout('LS-DYNA', { count: 0 }), { instanceOf: LicenseError });
  t.is(findFeature(parseLmstat(await c.status()), 'LS-DYNA')!.inUse, 0);
});

test('queue: QUEUED, then the unsolicited GRANTED resolves the checkout; the connection stays usable meanwhile', async (t) => {
  const d = await licd(t, { features: [{ name: 'LS-DYNA', count: 1 }] });
  const a = await client(t, d.ports.license, 'alice');
  const b = await client(t, d.ports.license, 'bob');
  const first = await a.checkout('LS-DYNA');

  const positions: number[] = [];
  const waiting = b.checkout('LS-DYNA', { queue: true, onQueued: (p) => positions.push(p) });
  await waitFor(() => positions.length === 1, { what: 'QUEUED' });
  t.deepEqual(positions, [1]);
  t.is(b.queuedCount, 1);
  await b.heartbeat(); // answered in order while the queued checkout waits

  await a.checkin(first.handle);
  const grant = await waiting;
  t.is(grant.feature, 'LS-DYNA');
  t.regex(grant.handle, /^t1\./);
  t.is(b.queuedCount, 0);
  await b.checkin(grant.handle);
});

test('a queued checkout fails when the connection closes', async (t) => {
  const d = await licd(t, { features: [{ name: 'LS-DYNA', count: 1 }] });
  const a = await client(t, d.ports.license);
  const b = await client(t, d.ports.license, 'bob');
  await a.checkout('LS-DYNA');
  let queued = false;
  const waiting = b.checkout('LS-DYNA', { queue: true, onQueued: () => (queued = true) });
  await waitFor(() => queued, { what: 'QUEUED' });
  b.destroy();
  const err = await t.throwsAsync(waiting, { instanceOf: LicenseError });
  t.is(err!.code, 'CONNECTION_CLOSED');
});

test('a GRANTED interleaved before the answer of another request goes to the queued checkout', async (t) => {
  const fake = await fakeServer(t, (line, s) => {
    if (line.startsWith('HELLO')) s.write('OK server=fake proto=1\n');
    else if (line.startsWith('CHECKOUT')) s.write('QUEUED position=3\n');
    else if (line === 'HEARTBEAT') s.write('GRANTED handle=fake.7 feature=LS-DYNA count=1\nOK\n');
  });
  const c = await client(t, fake.port);
  let position = 0;
  const waiting = c.checkout('LS-DYNA', { queue: true, onQueued: (p) => (position = p) });
  await waitFor(() => position === 3, { what: 'QUEUED' });
  await c.heartbeat();
  t.deepEqual(await waiting, { handle: 'fake.7', feature: 'LS-DYNA', count: 1 });
});

test('tokens on the same server; UNKNOWN_HANDLE on another server is a typed error', async (t) => {
  const d1 = await licd(t, { name: 'a' });
  const d2 = await licd(t, { name: 'b' });
  const c = await client(t, d1.ports.license);
  const grant = await c.checkout('LS-DYNA');

  const tok = await openTokens('127.0.0.1', d1.ports.tokens);
  t.teardown(() => tok.destroy());
  t.deepEqual(await tok.tokens(grant.handle, 8), { tokens: 8, feature: 'MPPDYNA' });
  t.is(findFeature(parseLmstat(await c.status()), 'MPPDYNA')!.inUse, 8);
  await tok.release(8);
  t.is(findFeature(parseLmstat(await c.status()), 'MPPDYNA')!.inUse, 0);

  const other = await TokenClient.open('127.0.0.1', d2.ports.tokens);
  t.teardown(() => other.destroy());
  const err = await t.throwsAsync(other.tokens(grant.handle, 4), { instanceOf: LicenseProtocolError });
  t.is(err!.code, 'UNKNOWN_HANDLE');
  t.regex(err!.message, /TOKENS a\.\S+ 4 answered ERR UNKNOWN_HANDLE/);
});

test('a request with no answer times out, and the connection is closed rather than desynchronised', async (t) => {
  const fake = await fakeServer(t, (line, s) => {
    if (line.startsWith('HELLO')) s.write('OK server=fake proto=1\n');
    // HEARTBEAT: never answered
  });
  const c = await connect('127.0.0.1', fake.port, { timeout: 5000, requestTimeout: 200 });
  t.teardown(() => c.destroy());
  // HELLO is answered: it gets a long timeout, so a loaded machine cannot fail it; only the HEARTBEAT's 200 ms counts.
  await c.hello('alice', 'ws1', {}, { timeout: 10_000 });
  const started = Date.now();
  const err = await t.throwsAsync(c.heartbeat(), { instanceOf: LicenseTimeoutError });
  t.is(err!.code, 'TIMEOUT');
  t.true(Date.now() - started >= 190);
  await c.closed;
  const after = await t.throwsAsync(c.heartbeat(), { instanceOf: LicenseConnectionError });
  t.is(after!.code, 'CONNECTION_CLOSED');
});

test('connect failures are CONNECT_FAILED', async (t) => {
  const fake = await fakeServer(t, () => {});
  const port = fake.port;
  await new Promise<void>((resolve) => fake.server.close(() => resolve()));
  const err = await t.throwsAsync(connect('127.0.0.1', port, { timeout: 2000 }), { instanceOf: LicenseConnectionError });
  t.is(err!.code, 'CONNECT_FAILED');
  t.regex(err!.message, /ECONNREFUSED/);
});

test('onDisconnect fires and pending requests fail when the server goes away', async (t) => {
  const fake = await fakeServer(t, (line, s) => {
    if (line.startsWith('HELLO')) s.write('OK server=fake proto=1\n');
    if (line === 'HEARTBEAT') s.destroy();
  });
  const seen: (LicenseError | undefined)[] = [];
  const c = await LicenseClient.connect('127.0.0.1', fake.port, {}, { onDisconnect: (err) => seen.push(err) });
  t.teardown(() => c.destroy());
  await c.hello('alice', 'ws1');
  const err = await t.throwsAsync(c.heartbeat(), { instanceOf: LicenseConnectionError });
  t.is(err!.code, 'CONNECTION_CLOSED');
  await waitFor(() => seen.length === 1, { what: 'onDisconnect' });
  t.is(seen[0]!.code, 'CONNECTION_CLOSED');
});

test('a clean close reports onDisconnect without an error', async (t) => {
  const d = await licd(t);
  const seen: unknown[] = [];
  const c = await LicenseClient.connect('127.0.0.1', d.ports.license, {}, { onDisconnect: (err) => seen.push(err) });
  await c.hello('alice', 'ws1');
  await c.quit();
  t.deepEqual(seen, [undefined]);
});

test('startHeartbeat sends HEARTBEAT on its interval and stops on close', async (t) => {
  let beats = 0;
  const fake = await fakeServer(t, (line, s) => {
    if (line.startsWith('HELLO')) s.write('OK server=fake proto=1\n');
    if (line === 'HEARTBEAT') {
      beats++;
      s.write('OK\n');
    }
  });
  const c = await client(t, fake.port);
  c.startHeartbeat(30);
  t.true(c.heartbeating);
  await waitFor(() => beats >= 3, { what: '3 heartbeats' });
  await c.close();
  t.false(c.heartbeating);
});

test('heartbeats keep a session alive past heartbeat_timeout; a silent one is ended', async (t) => {
  const d = await licd(t, { heartbeatTimeout: '1s', features: [{ name: 'LS-DYNA', count: 2 }] });
  const live = await client(t, d.ports.license, 'alice');
  const silent = await client(t, d.ports.license, 'bob');
  await live.checkout('LS-DYNA');
  await silent.checkout('LS-DYNA');
  live.startHeartbeat(200);
  await silent.closed; // ended by licd after 1s without traffic
  t.true(live.connected);
  const probe = await client(t, d.ports.license, 'carol');
  t.is(findFeature(parseLmstat(await probe.status()), 'LS-DYNA')!.inUse, 1);
});

test('resume retries often and bounds each attempt: a hung server (accepts, never answers) does not stall it', async (t) => {
  let hung = false;
  const fake = await fakeServer(t, (line, socket) => {
    if (hung) return; // a stopped process: the kernel accepted, nobody answers
    if (line.startsWith('CHECKOUT')) {
      socket.write('GRANTED handle=x.00112233445566778899aabbccddeeff0011223344556677 feature=F count=1\n');
      hung = true;
      setImmediate(() => socket.destroy());
    }
  });
  const c = await connect('127.0.0.1', fake.port, { timeout: 5_000, resume: { attemptTimeout: 250, giveUpAfter: 3_000 } });
  const delays: number[] = [];
  c.on('reconnecting', (e: { delay: number }) => delays.push(e.delay));
  const lost = new Promise((resolve) => c.once('lost', resolve));
  await c.checkout('F');
  await lost;
  // With the connection's 5s answer timeout per attempt there would be one attempt in 3s.
  t.true(delays.length >= 3, `attempts: ${delays.length}`);
  t.true(delays.every((d) => d <= 200), `delays ${delays.join(',')}`);
});

test('checkout sends a fresh random req= (idempotent replay through the balancer), never shown in its errors', async (t) => {
  const lines: string[] = [];
  const fake = await fakeServer(t, (line, socket) => {
    lines.push(line);
    if (lines.length === 1) socket.write('GRANTED handle=x.00112233445566778899aabbccddeeff0011223344556677 feature=F count=2\n');
  });
  const c = await connect('127.0.0.1', fake.port, { timeout: 5_000, resume: false });
  t.teardown(() => c.destroy());
  t.is((await c.checkout('F', { count: 2 })).count, 2);
  const err = await t.throwsAsync(c.checkout('F', { timeout: 300 }));
  t.regex(lines[0]!, /^CHECKOUT F count=2 resume=no req=[0-9a-f]{32}$/);
  t.regex(lines[1]!, /^CHECKOUT F resume=no req=[0-9a-f]{32}$/);
  t.not(lines[0]!.slice(-32), lines[1]!.slice(-32));
  t.false(err!.message.includes(lines[1]!.slice(-32)), err!.message);
});

test('resume: false sends CHECKOUT ... resume=no (licd frees the seat at a master change); resume on sends no such option', async (t) => {
  const lines: string[] = [];
  const fake = await fakeServer(t, (line, socket) => {
    lines.push(line);
    socket.write(`GRANTED handle=x.00112233445566778899aabbccddeeff00112233445566${lines.length.toString().padStart(2, '0')} feature=F count=1\n`);
  });
  const once = await connect('127.0.0.1', fake.port, { timeout: 5_000, resume: false });
  t.teardown(() => once.destroy());
  await once.checkout('F', { version: '2.0', queue: true });
  const resumable = await connect('127.0.0.1', fake.port, { timeout: 5_000 });
  t.teardown(() => resumable.destroy());
  await resumable.checkout('F');
  t.regex(lines[0]!, /^CHECKOUT F version=2\.0 queue=1 resume=no req=[0-9a-f]{32}$/);
  t.regex(lines[1]!, /^CHECKOUT F req=[0-9a-f]{32}$/);
});
