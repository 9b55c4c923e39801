import { createHash, randomBytes } from 'node:crypto';
import test from 'ava';
import { LineClient, startLicd } from '../helpers/licd.ts';
import { captureLogger, connectClient, readAll, readBytes, startProxy } from '../helpers/proxy.ts';
import { digestOf, startBackend, startEcho } from '../helpers/backend.ts';
import { waitFor } from '../helpers/wait.ts';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('bytes are forwarded unchanged both ways (5 MB random each way, concurrently)', async (t) => {
  const down = randomBytes(5 * 1024 * 1024);
  let received: Promise<{ sha256: string; length: number }> | null = null;
  const b = await startBackend(t, (s) => {
    received = digestOf(s);
    s.end(down);
  });
  const rt = await startProxy(t, { pools: [{ name: 'p', servers: [{ name: 'a', port: b.port }] }] });
  const up = randomBytes(5 * 1024 * 1024);
  const c = await connectClient(t, rt.port('p'), { allowHalfOpen: true });
  const got = readAll(c);
  c.end(up);
  const { data, error } = await got;
  t.is(error, null);
  t.is(data.length, down.length);
  t.is(sha(data), sha(down));
  const r = await waitFor(() => received);
  t.deepEqual(await r, { sha256: sha(up), length: up.length });
  await waitFor(() => rt.live.size === 0, { what: 'connection finished' });
  const srv = rt.server('p', 'a')!.counters;
  t.is(srv.bytesIn, up.length);
  t.is(srv.bytesOut, down.length);
  t.is(srv.cur, 0);
});

test('back-pressure: a client that does not read stalls the server; the proxy buffers a bounded amount', async (t) => {
  const chunk = Buffer.alloc(64 * 1024, 7);
  const total = 96 * 1024 * 1024;
  const state = { sent: 0, blockedSince: 0 };
  const b = await startBackend(t, (s) => {
    const pump = (): void => {
      while (state.sent < total) {
        state.sent += chunk.length;
        if (!s.write(chunk)) {
          state.blockedSince = Date.now();
          s.once('drain', () => {
            state.blockedSince = 0;
            pump();
          });
          return;
        }
      }
      s.end();
    };
    pump();
  });
  const rt = await startProxy(t, { pools: [{ name: 'p', servers: [{ name: 'a', port: b.port }] }] });
  const c = await connectClient(t, rt.port('p'));
  c.pause();
  await waitFor(() => state.blockedSince > 0 && Date.now() - state.blockedSince > 300, { timeout: 20_000, what: 'server stalled' });
  t.true(state.sent < total, `server stalled after ${state.sent} bytes`);
  const conn = [...rt.live][0]!;
  const upstream = conn.upstream!;
  t.true(conn.client.writableLength <= 1024 * 1024, `client-side buffer ${conn.client.writableLength}`);
  t.true(upstream.readableLength <= 1024 * 1024, `server-side read buffer ${upstream.readableLength}`);
  t.true(upstream.isPaused(), 'the proxy stopped reading from the server');
  let n = 0;
  c.on('data', (d: Buffer) => (n += d.length));
  c.resume();
  await new Promise((r) => c.once('end', r));
  t.is(n, total);
});

test('half-close: the client ends its side and still receives the reply', async (t) => {
  const b = await startBackend(t, (s) => {
    let n = 0;
    s.on('data', (d: Buffer) => (n += d.length));
    s.on('end', () => s.end(`got ${n} bytes\n`));
  });
  const rt = await startProxy(t, { pools: [{ name: 'p', servers: [{ name: 'a', port: b.port }] }] });
  const c = await connectClient(t, rt.port('p'), { allowHalfOpen: true });
  const all = readAll(c);
  c.end('hello world');
  const { data, error } = await all;
  t.is(error, null);
  t.is(data.toString(), 'got 11 bytes\n');
});

test('half-close the other way: the server ends first, the client keeps sending', async (t) => {
  let serverGot = '';
  const done = new Promise<void>((resolve) => {
    void startBackend(t, (s) => {
      s.end('bye\n');
      s.on('data', (d: Buffer) => (serverGot += d.toString()));
      s.on('end', () => resolve());
    }).then((b) => (port = b.port));
  });
  let port = 0;
  await waitFor(() => port);
  const rt = await startProxy(t, { pools: [{ name: 'p', servers: [{ name: 'a', port }] }] });
  const c = await connectClient(t, rt.port('p'), { allowHalfOpen: true });
  const all = readAll(c);
  await new Promise((r) => c.once('end', r));
  c.end('still here');
  await done;
  t.is(serverGot, 'still here');
  t.is((await all).data.toString(), 'bye\n');
});

test('a client reset closes the server side within 100 ms', async (t) => {
  const closedAt = new Map<number, number>();
  const got = new Map<number, number>();
  let next = 0;
  const b = await startBackend(t, (s) => {
    const id = next++;
    got.set(id, 0);
    s.on('data', (d: Buffer) => got.set(id, got.get(id)! + d.length));
    s.on('close', () => closedAt.set(id, Date.now()));
  });
  const { log, closed } = captureLogger();
  const rt = await startProxy(t, { pools: [{ name: 'p', servers: [{ name: 'a', port: b.port }] }] }, { log });
  // Proxy, backend and client share this test's event loop, so a stall of the (busy, shared) machine lands in the
  // measurement: the best of three attempts must be under 100 ms, every attempt must close the server side.
  const delays: number[] = [];
  for (let id = 0; id < 3; id++) {
    const c = await connectClient(t, rt.port('p'));
    c.write('x');
    // Once the proxy has read what the client sent. (A RST that reaches a socket whose receive queue still holds
    // data reads as data then EOF on Linux: the proxy then passes a FIN, not a reset.)
    await waitFor(() => got.get(id) === 1);
    const resetAt = Date.now();
    c.resetAndDestroy();
    const at = await waitFor(() => closedAt.get(id), { what: 'server side closed' });
    delays.push(at - resetAt);
    if (at - resetAt < 100) break;
  }
  t.true(Math.min(...delays) < 100, `server side closed after ${delays.join(', ')} ms`);
  await waitFor(() => closed().length === delays.length);
  t.is(closed()[0]!.end, 'client_close');
});

test('a client reset frees its license seat on licd (STATUS)', async (t) => {
  const licd = await startLicd({ features: [{ name: 'LS-DYNA', count: 2 }] });
  t.teardown(licd.stop);
  const rt = await startProxy(t, {
    pools: [{ name: 'p', servers: [{ name: 'a', ports: { license: licd.ports.license } }] }],
  });
  const c = await LineClient.connect(rt.port('p'));
  t.teardown(() => c.destroy());
  t.regex(await c.request('HELLO user=alice host=ws1'), /^OK/);
  t.regex(await c.request('CHECKOUT LS-DYNA'), /^GRANTED/);
  const admin = await LineClient.connect(licd.ports.license);
  t.teardown(() => admin.destroy());
  const inUse = async (): Promise<number> => {
    const j = JSON.parse(await admin.request('STATUS json')) as { features: { name: string; inUse: number }[] };
    return j.features.find((f) => f.name === 'LS-DYNA')!.inUse;
  };
  t.is(await inUse(), 1);
  const resetAt = Date.now();
  c.reset();
  await waitFor(async () => (await inUse()) === 0, { interval: 5, what: 'seat freed' });
  t.log(`seat freed ${Date.now() - resetAt} ms after the client reset`);
  t.true(Date.now() - resetAt < 1000);
});

test('a server reset closes the client side at once', async (t) => {
  const b = await startBackend(t, (s) => s.once('data', () => s.resetAndDestroy()));
  const { log, closed } = captureLogger();
  const rt = await startProxy(t, { pools: [{ name: 'p', servers: [{ name: 'a', port: b.port }] }] }, { log });
  const c = await connectClient(t, rt.port('p'));
  const all = readAll(c);
  const at = Date.now();
  c.write('boom');
  await all;
  t.true(Date.now() - at < 1000);
  await waitFor(() => closed().length === 1);
  t.is(closed()[0]!.end, 'server_close');
  t.regex(String(closed()[0]!.error), /ECONNRESET/);
});

test('idle timeout: no byte either way for timeouts.idle closes both sides; traffic in either direction keeps it open', async (t) => {
  let serverClosed = false;
  const b = await startBackend(t, (s) => {
    s.pipe(s);
    s.on('close', () => (serverClosed = true));
  });
  const { log, closed } = captureLogger();
  const rt = await startProxy(t, { pools: [{ name: 'p', timeouts: { idle: 300 }, servers: [{ name: 'a', port: b.port }] }] }, { log });
  const c = await connectClient(t, rt.port('p'));
  const all = readAll(c);
  // 8 exchanges 100 ms apart: 800 ms alive although idle is 300 ms.
  let quietFrom = 0;
  for (let i = 0; i < 8; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 100));
    c.write('ping');
    await readBytes(c, 4);
    quietFrom = Date.now();
  }
  t.false(c.destroyed);
  await all;
  const after = Date.now() - quietFrom;
  t.true(after >= 250 && after < 3000, `closed after ${after} ms of silence`);
  await waitFor(() => serverClosed, { what: 'server side closed' });
  await waitFor(() => closed().length === 1);
  t.is(closed()[0]!.end, 'idle_timeout');
});

test('a pool with no usable server closes new clients at once (no_server)', async (t) => {
  const b = await startEcho(t);
  const { log, closed } = captureLogger();
  const rt = await startProxy(t, { pools: [{ name: 'p', servers: [{ name: 'a', port: b.port }] }] }, { log });
  rt.server('p', 'a')!.setHealth('down', 'test');
  t.false(rt.pool('p')!.isAvailable());
  t.deepEqual(rt.readiness(), { ready: false, unavailable: ['p'] });
  const c = await connectClient(t, rt.port('p'));
  const { data } = await readAll(c);
  t.is(data.length, 0);
  await waitFor(() => closed().length === 1);
  t.is(closed()[0]!.end, 'no_server');
  t.is(rt.pool('p')!.counters.noServer, 1);
});

test('the connection log line has every field of SPEC 2.5', async (t) => {
  const b = await startEcho(t);
  const { log, closed } = captureLogger();
  const rt = await startProxy(t, { pools: [{ name: 'p', servers: [{ name: 'a', port: b.port, tier: 0 }] }] }, { log });
  const c = await connectClient(t, rt.port('p'));
  c.write('abc');
  await readBytes(c, 3);
  c.end();
  await waitFor(() => closed().length === 1);
  const l = closed()[0]!;
  t.like(l, { frontend: 'p', pool: 'p', server: 'a', tier: 0, bytesIn: 3, bytesOut: 3, end: 'client_close', queueMs: 0 });
  t.regex(String(l.client), /^127\.0\.0\.1:\d+$/);
  t.is(typeof l.connectMs, 'number');
  t.is(typeof l.totalMs, 'number');
});
