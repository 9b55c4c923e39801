/**
 * A client that arrives before its pool's first check results (a process just started; with socket activation the
 * clients that waited in the backlog all arrive then) waits for them in the queue instead of being refused: served
 * if a server comes UP, refused (`no_server`) at once if every first result is DOWN, not after `timeouts.queue`.
 */
import test from 'ava';
import type { HealthMonitorLike } from '../../src/health/types.ts';
import type { Server } from '../../src/proxy/server.ts';
import { startNamed } from '../helpers/backend.ts';
import { captureLogger, connectClient, readAll, readBytes, startProxy } from '../helpers/proxy.ts';
import { waitFor } from '../helpers/wait.ts';

/** A monitor whose first result the test gives (`servers[i].setHealth`). */
function held(servers: Server[]): (s: Server) => HealthMonitorLike {
  return (s) => {
    servers.push(s);
    return { state: 'unknown', statusText: 'no check', start() {}, stop() {}, reportFailure() {}, update() {} };
  };
}

test('before the first check result a client waits in the queue; a server coming UP serves it', async (t) => {
  const b = await startNamed(t, 'a');
  const servers: Server[] = [];
  const rt = await startProxy(t, { pools: [{ name: 'p', check: { type: 'tcp' }, servers: [{ name: 'a', port: b.port }] }] }, { monitorFactory: held(servers) });
  const c = await connectClient(t, rt.port('p'));
  await waitFor(() => rt.pool('p')!.counters.queueCur === 1, { what: 'the client queued for the first result' });
  servers[0]!.setHealth('up', 'first check passed');
  t.is((await readBytes(c, 2)).toString(), 'a\n');
  t.is(rt.pool('p')!.counters.noServer, 0);
});

test('first results all DOWN: the waiting client is refused (no_server), without waiting out timeouts.queue', async (t) => {
  const b = await startNamed(t, 'a');
  const servers: Server[] = [];
  const { log, closed } = captureLogger();
  const rt = await startProxy(
    t,
    { pools: [{ name: 'p', check: { type: 'tcp' }, timeouts: { queue: 600_000 }, servers: [{ name: 'a', port: b.port }, { name: 'b', port: b.port }] }] },
    { log, monitorFactory: held(servers) },
  );
  const c = await connectClient(t, rt.port('p'));
  await waitFor(() => rt.pool('p')!.counters.queueCur === 1, { what: 'the client queued for the first results' });
  servers[0]!.setHealth('down', 'refused');
  t.is(rt.pool('p')!.counters.queueCur, 1, 'still waiting for the other server');
  servers[1]!.setHealth('down', 'refused');
  await readAll(c);
  await waitFor(() => closed().length === 1);
  t.like(closed()[0], { end: 'no_server' });
  t.like(rt.pool('p')!.counters, { queueCur: 0, queueTimeouts: 0, noServer: 1 });
  t.is(b.accepted, 0);
});
