/**
 * Current connection counts stay exact after a server-side close: when licd ends a silent client's session (its
 * heartbeat_timeout) and closes its side, the proxy passes the FIN on; a client that never closes its own side
 * (hung, stopped) is closed after `timeouts.client_fin` of silence instead of counting as current until the idle
 * timeout. A client that answers the FIN with its own is a plain `server_close`, as before.
 */
import { connect, type Socket } from 'node:net';
import test from 'ava';
import { startLicd } from '../helpers/licd.ts';
import { ask, captureLogger, startProxy } from '../helpers/proxy.ts';
import { waitFor } from '../helpers/wait.ts';

function halfOpenClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // allowHalfOpen: the server's FIN does not make this side close: a client that never closes.
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

test('a silent client whose licd session timed out is closed after client_fin; counts go back to 0', async (t) => {
  const licd = await startLicd({ features: [{ name: 'LS-DYNA', count: 2 }], heartbeatTimeout: '300ms' });
  t.teardown(licd.stop);
  const { log, closed } = captureLogger();
  const rt = await startProxy(
    t,
    // idle stays at its default (30m): only client_fin can end the half-closed connection within the test.
    { pools: [{ name: 'lic', timeouts: { clientFin: 400 }, servers: [{ name: 'licd', port: licd.ports.license }] }] },
    { log },
  );
  const silent = await halfOpenClient(rt.port('lic'));
  t.teardown(() => silent.destroy());
  let gotFin = false;
  let closedByProxy = false;
  silent.once('end', () => (gotFin = true));
  silent.once('close', () => (closedByProxy = true));
  silent.on('error', () => {});
  t.regex(await ask(silent, 'CHECKOUT LS-DYNA'), /^GRANTED/);
  const server = rt.server('lic', 'licd')!;
  t.is(server.counters.cur, 1);

  // licd ends the session (no heartbeat) and closes; the FIN reaches the client, which stays silent.
  await waitFor(() => gotFin, { what: 'the FIN passed on' });
  t.is(licd.server.status().features[0]!.inUse, 0, 'licd freed the seat');
  await waitFor(() => server.counters.cur === 0, { what: 'server current back to 0' });
  t.is(rt.frontend('lic')!.counters.current, 0);
  t.is(rt.live.size, 0);
  await waitFor(() => closed().length === 1, { what: 'the connection log line' });
  t.is(closed()[0]!.end, 'client_fin_timeout');
  // The proxy's side is gone: the client learns it when it writes again (its FIN already came; a write is
  // answered by a reset, the next one fails).
  t.false(closedByProxy);
  await waitFor(
    () => {
      if (!silent.destroyed) silent.write('HEARTBEAT\n');
      return closedByProxy;
    },
    { interval: 50, what: 'the client to see its connection gone' },
  );
});

test('a client that answers the server\'s FIN with its own ends as server_close, without waiting for client_fin', async (t) => {
  const licd = await startLicd({ features: [{ name: 'LS-DYNA', count: 2 }], heartbeatTimeout: '300ms' });
  t.teardown(licd.stop);
  const { log, closed } = captureLogger();
  const rt = await startProxy(
    t,
    { pools: [{ name: 'lic', timeouts: { clientFin: 600_000 }, servers: [{ name: 'licd', port: licd.ports.license }] }] },
    { log },
  );
  const polite = connect({ host: '127.0.0.1', port: rt.port('lic') });
  t.teardown(() => polite.destroy());
  polite.on('error', () => {});
  await new Promise((r) => polite.once('connect', r));
  t.regex(await ask(polite, 'CHECKOUT LS-DYNA'), /^GRANTED/);
  await new Promise((r) => polite.once('close', r));
  await waitFor(() => rt.server('lic', 'licd')!.counters.cur === 0, { what: 'server current back to 0' });
  await waitFor(() => closed().length === 1, { what: 'the connection log line' });
  t.is(closed()[0]!.end, 'server_close');
});
