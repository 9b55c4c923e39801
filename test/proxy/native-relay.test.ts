/**
 * The native relay (native/relay.c via src/proxy/native-relay.ts): a plain connection still talking after a few
 * exchanges is relayed in C. Everything the JavaScript path guarantees must
 * hold there too: bytes unchanged and counted, half-close both ways, resets passed on, idle and client_fin
 * timeouts, an operator's close, and the end reason in the log. Each test first proves the connection was handed
 * over (`conn.native`), so none passes on the JavaScript path by accident.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { nativeRelay, nativeRelayOff } from '../../src/proxy/native-relay.ts';
import type { Connection } from '../../src/proxy/connection.ts';
import type { ProxyRuntime } from '../../src/proxy/runtime.ts';
import { pump, startBackend, startEcho, type PumpState } from '../helpers/backend.ts';
import { captureLogger, connectClient, readAll, startProxy } from '../helpers/proxy.ts';
import { settles, waitFor } from '../helpers/wait.ts';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const built = nativeRelay !== null;
/** Turned off on purpose (CI runs the proxy tests once more with LICPROXY_RAW_HANDLES=0): nothing to test here. */
const switchedOff = process.env.LICPROXY_RAW_HANDLES === '0' || process.env.LICPROXY_NATIVE_RELAY === '0';
const nativeTest = built ? test : test.skip;
if (!built && !switchedOff) test('the native relay is built here (npm run build)', (t) => t.fail(`native relay off: ${nativeRelayOff}`));

/** Sends `line` and reads until `want` bytes came back (an echo). */
async function exchange(c: Socket, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer): void => {
      got += d.toString();
      if (got.length >= line.length) {
        c.off('data', onData);
        resolve(got);
      }
    };
    c.on('data', onData);
    c.once('error', reject);
    c.write(line);
  });
}

function only(rt: ProxyRuntime): Connection | undefined {
  return [...rt.live][0];
}

/** Pings through an echo until the connection is relayed natively (at most 50 exchanges). */
async function promoted(t: ExecutionContext, rt: ProxyRuntime, c: Socket): Promise<Connection> {
  for (let i = 0; i < 50; i++) {
    t.is(await exchange(c, `ping ${i}\n`), `ping ${i}\n`);
    const conn = only(rt);
    if (conn?.native) return conn;
  }
  throw new Error('not handed to the native relay after 50 exchanges');
}

nativeTest('a talking connection is handed over after a few exchanges; bytes stay exact and counted', async (t) => {
  const b = await startEcho(t);
  const { log, closed } = captureLogger();
  const rt = await startProxy(t, { pools: [{ name: 'p', servers: [{ name: 'a', port: b.port }] }] }, { log });
  const c = await connectClient(t, rt.port('p'));
  const conn = await promoted(t, rt, c);
  t.true(nativeRelay!.live >= 1);
  // 2 MB through the native side, echoed: exact bytes, and the counters include what JavaScript relayed first.
  const blob = randomBytes(2 * 1024 * 1024);
  const echoed = new Promise<Buffer>((resolve) => {
    const parts: Buffer[] = [];
    let n = 0;
    const onData = (d: Buffer): void => {
      parts.push(d);
      n += d.length;
      if (n >= blob.length) {
        c.off('data', onData);
        resolve(Buffer.concat(parts));
      }
    };
    c.on('data', onData);
  });
  c.write(blob);
  t.is(sha(await settles(echoed, { timeout: 30_000, what: '2 MB echoed' })), sha(blob));
  const sent = conn.bytesIn;
  t.is(conn.bytesOut, sent);
  t.true(sent > blob.length, `bytesIn ${sent} counts the pings and the blob`);
  c.end();
  await waitFor(() => rt.live.size === 0, { what: 'connection finished' });
  await waitFor(() => closed().length === 1);
  const line = closed()[0]!;
  t.is(line.end, 'client_close');
  t.is(line.bytesIn, sent);
  t.is(line.bytesOut, sent);
  const srv = rt.server('p', 'a')!.counters;
  t.is(srv.bytesIn, sent);
  t.is(srv.cur, 0);
});

nativeTest('the idle timeout still closes a native connection, never before it has passed', async (t) => {
  const b = await startEcho(t);
  const { log, closed } = captureLogger();
  // idle 3 s: idle sweeps every 300 ms.
  const rt = await startProxy(t, { pools: [{ name: 'p', timeouts: { idle: 3_000 }, servers: [{ name: 'a', port: b.port }] }] }, { log });
  const c = await connectClient(t, rt.port('p'));
  await promoted(t, rt, c);
  const lastByte = Date.now();
  await settles(readAll(c), { timeout: 15_000, what: 'idle close' });
  t.true(Date.now() - lastByte >= 3_000, 'not before the idle timeout');
  await waitFor(() => closed().length === 1);
  t.is(closed()[0]!.end, 'idle_timeout');
});

nativeTest('half-close: the client ends first and still gets the rest of the answer', async (t) => {
  let serverGot = 0;
  const b = await startBackend(t, (s) => {
    s.on('data', (d: Buffer) => {
      serverGot += d.length;
      s.write(d);
    });
    s.on('end', () => s.end(`total ${serverGot}\n`));
  });
  const { log, closed } = captureLogger();
  const rt = await startProxy(t, { pools: [{ name: 'p', servers: [{ name: 'a', port: b.port }] }] }, { log });
  const c = await connectClient(t, rt.port('p'), { allowHalfOpen: true });
  await promoted(t, rt, c);
  const sent = serverGot;
  const rest = readAll(c);
  c.end();
  const { data, error } = await settles(rest, { what: 'answer after FIN' });
  t.is(error, null);
  t.is(data.toString(), `total ${sent}\n`);
  await waitFor(() => closed().length === 1);
  t.is(closed()[0]!.end, 'client_close');
});

nativeTest('half-close: the server ends first, the client keeps sending until client_fin passes', async (t) => {
  let serverGot = '';
  let serverClosed = false;
  const streams: Socket[] = [];
  const b = await startBackend(t, (s) => {
    streams.push(s);
    s.on('data', (d: Buffer) => {
      serverGot += d.toString();
      if (!s.writableEnded) s.write(d);
    });
    s.on('close', () => (serverClosed = true));
  });
  const { log, closed } = captureLogger();
  const rt = await startProxy(t, { pools: [{ name: 'p', timeouts: { clientFin: 2_000 }, servers: [{ name: 'a', port: b.port }] }] }, { log });
  const c = await connectClient(t, rt.port('p'), { allowHalfOpen: true });
  await promoted(t, rt, c);
  let downstream = '';
  c.on('data', (d: Buffer) => (downstream += d.toString()));
  streams[0]!.end('bye\n');
  await waitFor(() => c.readableEnded, { what: 'the FIN reached the client' });
  c.write('after your FIN\n');
  await waitFor(() => serverGot.endsWith('after your FIN\n'), { what: 'client bytes after the server FIN' });
  // The client never closes: client_fin (2 s) ends it (the client learns only when it writes again).
  await waitFor(() => closed().length === 1, { timeout: 20_000, what: 'client_fin close' });
  t.is(closed()[0]!.end, 'client_fin_timeout');
  t.true(downstream.endsWith('bye\n'));
  await waitFor(() => serverClosed, { what: 'server side closed' });
});

nativeTest('a server reset reaches the client as a reset', async (t) => {
  const held: Socket[] = [];
  const b = await startBackend(t, (s) => {
    held.push(s);
    s.pipe(s);
  });
  const { log, closed } = captureLogger();
  const rt = await startProxy(t, { pools: [{ name: 'p', servers: [{ name: 'a', port: b.port }] }] }, { log });
  const c = await connectClient(t, rt.port('p'));
  await promoted(t, rt, c);
  const all = readAll(c);
  held[0]!.resetAndDestroy();
  const { error } = await settles(all, { what: 'client side closed' });
  t.is(error, 'ECONNRESET');
  await waitFor(() => closed().length === 1);
  t.is(closed()[0]!.end, 'server_close');
  t.regex(String(closed()[0]!.error), /server: ECONNRESET/);
});

nativeTest('a client reset closes the server side', async (t) => {
  let serverClosed = false;
  const b = await startBackend(t, (s) => {
    s.pipe(s);
    s.on('error', () => {});
    s.on('close', () => (serverClosed = true));
  });
  const { log, closed } = captureLogger();
  const rt = await startProxy(t, { pools: [{ name: 'p', servers: [{ name: 'a', port: b.port }] }] }, { log });
  const c = await connectClient(t, rt.port('p'));
  await promoted(t, rt, c);
  c.resetAndDestroy();
  await waitFor(() => serverClosed, { what: 'server side closed' });
  await waitFor(() => closed().length === 1);
  t.is(closed()[0]!.end, 'client_close');
});

nativeTest('an operator close (server down with on_down: close) ends a native connection at once', async (t) => {
  const b = await startEcho(t);
  const { log, closed } = captureLogger();
  const rt = await startProxy(t, { pools: [{ name: 'p', servers: [{ name: 'a', port: b.port }] }] }, { log });
  const c = await connectClient(t, rt.port('p'));
  const conn = await promoted(t, rt, c);
  const all = readAll(c);
  conn.close('server_down');
  await settles(all, { what: 'client side closed' });
  await waitFor(() => rt.live.size === 0, { what: 'connection finished' });
  await waitFor(() => closed().length === 1);
  t.is(closed()[0]!.end, 'server_down');
  t.is(rt.server('p', 'a')!.counters.cur, 0);
});

nativeTest('back-pressure: a client that does not read stalls the server with one read held', async (t) => {
  const chunk = Buffer.alloc(64 * 1024, 3);
  const total = 64 * 1024 * 1024;
  const state: PumpState = { sent: 0, blockedSince: 0 };
  const b = await startBackend(t, (s) => s.once('data', () => pump(s, chunk, total, state)));
  const rt = await startProxy(t, { pools: [{ name: 'p', servers: [{ name: 'a', port: b.port }] }] });
  const c = await connectClient(t, rt.port('p'));
  c.write('go');
  let got = 0;
  c.on('data', (d: Buffer) => (got += d.length));
  await waitFor(() => only(rt)?.native === true, { timeout: 20_000, what: 'bulk stream handed over' });
  c.pause();
  await waitFor(() => state.blockedSince > 0, { timeout: 20_000, what: 'server stalled' });
  const stalledAt = state.sent;
  t.true(stalledAt < total, `server stalled after ${stalledAt} bytes`);
  c.resume();
  await new Promise((r) => c.once('end', r));
  t.is(got, state.sent);
});
