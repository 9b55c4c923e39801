import test from 'ava';
import { captureLogger, connectClient, readAll, readBytes, startProxy } from '../helpers/proxy.ts';
import { startNamed } from '../helpers/backend.ts';
import { waitFor } from '../helpers/wait.ts';
import { ProxyRuntime } from '../../src/proxy/runtime.ts';
import { makeConfig } from '../helpers/proxy.ts';

test('on_down keep: connections of a server marked DOWN stay open; on_down close: they are closed (server_down)', async (t) => {
  const b = await startNamed(t, 'a');
  const { log, closed } = captureLogger();
  const rt = await startProxy(
    t,
    {
      pools: [
        { name: 'keep', servers: [{ name: 'a', port: b.port }] },
        { name: 'close', check: { onDown: 'close' }, servers: [{ name: 'a', port: b.port }] },
      ],
    },
    { log },
  );
  const kept = await connectClient(t, rt.port('keep'));
  const cut = await connectClient(t, rt.port('close'));
  await readBytes(kept, 2);
  await readBytes(cut, 2);
  const cutDone = readAll(cut);
  rt.server('keep', 'a')!.setHealth('down', 'test');
  rt.server('close', 'a')!.setHealth('down', 'test');
  await cutDone;
  kept.write('still');
  t.is((await readBytes(kept, 5)).toString(), 'still');
  await waitFor(() => closed().length === 1);
  t.like(closed()[0], { pool: 'close', end: 'server_down' });
  const ev = rt.eventList().filter((e) => e.kind === 'server' && e.to === 'DOWN');
  t.is(ev.length, 2);
});

test('maint with maint_kill closes the connections (admin); drain keeps them and takes no new clients', async (t) => {
  const [a, b] = await Promise.all([startNamed(t, 'a'), startNamed(t, 'b')]);
  const { log, closed } = captureLogger();
  const rt = await startProxy(
    t,
    {
      pools: [
        {
          name: 'p',
          servers: [
            { name: 'a', port: a.port, maintKill: true },
            { name: 'b', port: b.port },
          ],
        },
      ],
    },
    { log },
  );
  const port = rt.port('p');
  const onA = await connectClient(t, port);
  const onB = await connectClient(t, port);
  t.is((await readBytes(onA, 2)).toString(), 'a\n');
  t.is((await readBytes(onB, 2)).toString(), 'b\n');
  rt.server('p', 'b')!.setAdminState('drain');
  t.is(rt.server('p', 'b')!.status, 'DRAIN');
  const next = await connectClient(t, port);
  t.is((await readBytes(next, 2)).toString(), 'a\n');
  onB.write('x');
  t.is((await readBytes(onB, 1)).toString(), 'x');
  const aGone = readAll(onA);
  rt.server('p', 'a')!.setAdminState('maint');
  await aGone;
  await waitFor(() => closed().filter((l) => l.end === 'admin').length === 2);
  t.false(onB.destroyed);
  const admin = rt.eventList().filter((e) => e.kind === 'admin');
  t.deepEqual(
    admin.map((e) => [e.server, e.to]),
    [
      ['b', 'drain'],
      ['a', 'maint'],
    ],
  );
});

test('stop(grace): stops accepting, waits for connections to end, then exits', async (t) => {
  const b = await startNamed(t, 'a');
  const rt = new ProxyRuntime(makeConfig({ pools: [{ name: 'p', servers: [{ name: 'a', port: b.port }] }] }));
  await rt.start();
  t.teardown(() => rt.stop(0));
  const port = rt.port('p');
  const c = await connectClient(t, port);
  await readBytes(c, 2);
  let stopped = false;
  const stopping = rt.stop(10_000).then(() => (stopped = true));
  await t.throwsAsync(connectClient(null, port), { code: 'ECONNREFUSED' });
  c.write('y');
  t.is((await readBytes(c, 1)).toString(), 'y', 'the held connection still works during the grace period');
  t.false(stopped);
  c.end();
  await stopping;
  t.is(rt.live.size, 0);
});

test('stop(grace): connections still open after the grace period are closed (shutdown)', async (t) => {
  const b = await startNamed(t, 'a');
  const { log, closed } = captureLogger();
  const rt = new ProxyRuntime(makeConfig({ pools: [{ name: 'p', servers: [{ name: 'a', port: b.port }] }] }), { log });
  await rt.start();
  const c = await connectClient(t, rt.port('p'));
  await readBytes(c, 2);
  const at = Date.now();
  const gone = readAll(c);
  await rt.stop(300);
  await gone;
  t.true(Date.now() - at >= 280);
  t.like(closed()[0], { end: 'shutdown' });
});

test('a connection closed while its server connect is pending does not count against the server', async (t) => {
  const { startBlackhole } = await import('../helpers/backend.ts');
  const hole = await startBlackhole(t);
  const { log, closed } = captureLogger();
  const rt = new ProxyRuntime(
    makeConfig({ pools: [{ name: 'p', timeouts: { connect: 10_000 }, servers: [{ name: 'a', port: hole.port }] }] }),
    { log },
  );
  await rt.start();
  const c = await connectClient(t, rt.port('p'));
  await waitFor(() => [...rt.live][0]?.state === 'connecting');
  const gone = readAll(c);
  await rt.stop(0);
  await gone;
  t.like(closed()[0], { end: 'shutdown' });
  t.is(rt.server('p', 'a')!.counters.connectErrors, 0);
  t.is(rt.server('p', 'a')!.counters.cur, 0);
});
