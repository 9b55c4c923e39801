import test from 'ava';
import type { HealthMonitorLike } from '../../src/health/types.ts';
import { captureLogger, connectClient, readAll, readBytes, startProxy } from '../helpers/proxy.ts';
import { closedPort, startBlackhole, startNamed } from '../helpers/backend.ts';
import { settles, waitFor } from '../helpers/wait.ts';

async function landOn(port: number): Promise<string> {
  const s = await connectClient(null, port);
  const name = (await readBytes(s, 1)).toString().trim();
  s.destroy();
  return name;
}

test('connect timeout: a server that never completes the handshake fails after timeouts.connect', async (t) => {
  const hole = await startBlackhole(t);
  const { log, closed } = captureLogger();
  const rt = await startProxy(
    t,
    { pools: [{ name: 'p', retries: 0, timeouts: { connect: 300 }, servers: [{ name: 'a', port: hole.port }] }] },
    { log },
  );
  // Before the connect, so that the proxy's connect attempt starts after it (a lower bound on the time taken).
  const at = Date.now();
  const c = await connectClient(t, rt.port('p'));
  await settles(readAll(c), { what: 'client closed' });
  const took = Date.now() - at;
  t.true(took >= 299, `closed after ${took} ms, not before timeouts.connect`);
  await waitFor(() => closed().length === 1);
  t.like(closed()[0], { end: 'connect_failed', error: 'connect timeout after 300ms', attempts: 1 });
  t.is(rt.server('p', 'a')!.counters.connectErrors, 1);
});

test('connect timeout then redispatch: the client lands on the other server', async (t) => {
  const hole = await startBlackhole(t);
  const good = await startNamed(t, 'g');
  const rt = await startProxy(t, {
    pools: [
      {
        name: 'p',
        retries: 1,
        redispatch: true,
        timeouts: { connect: 200 },
        servers: [
          { name: 'hole', port: hole.port },
          { name: 'good', port: good.port },
        ],
      },
    ],
  });
  // Round robin sends the first client to `hole`; the retry goes to `good`.
  t.is(await landOn(rt.port('p')), 'g');
  const h = rt.server('p', 'hole')!.counters;
  t.like(h, { connectErrors: 1, retries: 1, redispatches: 1, cur: 0 });
});

test('refused connects: redispatch moves the client to a working server; every client is served', async (t) => {
  const dead = await closedPort();
  const good = await startNamed(t, 'g');
  const rt = await startProxy(t, {
    pools: [
      {
        name: 'p',
        retries: 3,
        redispatch: true,
        servers: [
          { name: 'dead', port: dead },
          { name: 'good', port: good.port },
        ],
      },
    ],
  });
  for (let i = 0; i < 6; i++) t.is(await landOn(rt.port('p')), 'g');
  const d = rt.server('p', 'dead')!.counters;
  t.is(d.connectErrors, 3);
  t.is(d.redispatches, 3);
  t.is(d.cur, 0);
});

test('refused connects without redispatch: retries the same server `retries` more times, then closes the client', async (t) => {
  const dead = await closedPort();
  const { log, closed } = captureLogger();
  const failures: string[] = [];
  const monitor = (): HealthMonitorLike => ({
    state: 'up',
    statusText: 'UP',
    start() {},
    stop() {},
    reportFailure: (r) => void failures.push(r),
    update() {},
  });
  const rt = await startProxy(
    t,
    { pools: [{ name: 'p', retries: 2, redispatch: false, check: { type: 'tcp' }, servers: [{ name: 'dead', port: dead }] }] },
    { log, monitorFactory: (s) => (queueMicrotask(() => s.setHealth('up', 'test')), monitor()) },
  );
  await waitFor(() => rt.pool('p')!.isAvailable());
  const c = await connectClient(t, rt.port('p'));
  await readAll(c);
  await waitFor(() => closed().length === 1);
  t.like(closed()[0], { end: 'connect_failed', attempts: 3, server: 'dead' });
  t.like(rt.server('p', 'dead')!.counters, { connectErrors: 3, retries: 2, redispatches: 0 });
  t.is(failures.length, 3, 'each failed connect is reported to the monitor (passive health)');
  t.regex(failures[0]!, /ECONNREFUSED/);
});

test('max_connections per server: a full server makes clients queue; a freed slot lets the next one in; the queue times out', async (t) => {
  const b = await startNamed(t, 'a');
  const { log, closed } = captureLogger();
  const rt = await startProxy(
    t,
    { pools: [{ name: 'p', timeouts: { queue: 400 }, servers: [{ name: 'a', port: b.port, maxConnections: 1 }] }] },
    { log },
  );
  const port = rt.port('p');
  const first = await connectClient(t, port);
  t.is((await readBytes(first, 2)).toString(), 'a\n');
  const second = await connectClient(t, port);
  const secondData = readBytes(second, 2);
  await waitFor(() => rt.pool('p')!.counters.queueCur === 1, { what: 'second client queued' });
  t.is(b.accepted, 1);
  first.destroy();
  t.is((await secondData).toString(), 'a\n');
  t.is(rt.pool('p')!.counters.queueCur, 0);
  // Now `second` holds the slot: a third waits and gives up after timeouts.queue.
  const at = Date.now(); // before the connect: the proxy queues the client after it
  const third = await connectClient(t, port);
  const { data } = await settles(readAll(third), { what: 'third client closed' });
  t.is(data.length, 0);
  const waited = Date.now() - at;
  t.true(waited >= 399, `waited ${waited} ms, not less than timeouts.queue`);
  await waitFor(() => closed().some((l) => l.end === 'queue_timeout'));
  const l = closed().find((x) => x.end === 'queue_timeout')!;
  t.true((l.queueMs as number) >= 350);
  t.like(rt.pool('p')!.counters, { queueTimeouts: 1, queueMax: 1, queueCur: 0 });
  t.is(rt.server('p', 'a')!.counters.max, 1);
});

test('max_connections: a full server is skipped while another of the tier has room', async (t) => {
  const [a, b] = await Promise.all([startNamed(t, 'a'), startNamed(t, 'b')]);
  const rt = await startProxy(t, {
    pools: [
      {
        name: 'p',
        servers: [
          { name: 'a', port: a.port, maxConnections: 1 },
          { name: 'b', port: b.port },
        ],
      },
    ],
  });
  const port = rt.port('p');
  const held = await connectClient(t, port);
  t.is((await readBytes(held, 2)).toString(), 'a\n');
  const names: string[] = [];
  for (let i = 0; i < 4; i++) names.push(await landOn(port));
  t.deepEqual(names, ['b', 'b', 'b', 'b']);
});
