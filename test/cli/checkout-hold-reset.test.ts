/**
 * `licproxy checkout --hold` whose heartbeat is answered by a TCP reset: what a client meets when the balancer that
 * held its connection is lost and the other one takes over the virtual IP (that one never had the connection, so
 * it answers the next heartbeat with RST; test/ha/vip-pair.test.ts, power-off). The connection is gone, the license
 * is not: licd still holds it on the old upstream connection. The client library reconnects and RESUMEs the handle
 * (licd moves it to the new connection); the CLI must let it, not exit on the failed heartbeat.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { createServer, connect, type Socket } from 'node:net';
import { LICPROXY, REPO } from '../helpers/cli.ts';
import { LicdCluster } from '../helpers/licd-cluster.ts';
import { waitFor } from '../helpers/wait.ts';

test('a heartbeat answered by a reset: the hold resumes its handle on a new connection and goes on', async (t) => {
  t.timeout(90_000);
  const set = await LicdCluster.start({ mode: 'triad', features: [{ name: 'LS-DYNA', count: 5 }] });
  t.teardown(() => set.close());
  // Settled first: members that start at different times may elect a higher order, then hand over to the lowest,
  // and the relay below always dials the member chosen here.
  const master = await set.waitSynced();
  const target = set.members[master]!.ports.license;

  // A relay to the master. `resetOpen()` marks every connection open now: each is reset at its next byte from the
  // client, its upstream left open, as a lost balancer leaves its connections to licd. Connections the client opens
  // afterwards (its reconnect) are relayed as usual, however soon they come.
  const clients = new Set<Socket>();
  const doomed = new Set<Socket>();
  const sockets = new Set<Socket>();
  const resetOpen = (): void => clients.forEach((c) => doomed.add(c));
  const relay = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port: target });
    clients.add(client);
    sockets.add(client).add(upstream);
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('data', (d) => {
      if (doomed.has(client)) return void client.resetAndDestroy();
      upstream.write(d);
    });
    upstream.on('data', (d) => client.write(d));
    client.on('close', () => {
      clients.delete(client);
      if (!doomed.has(client)) upstream.destroy();
    });
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    relay.close();
    sockets.forEach((s) => s.destroy());
  });
  const port = (relay.address() as { port: number }).port;

  const child = spawn(process.execPath, [LICPROXY, 'checkout', 'LS-DYNA', '-s', `127.0.0.1:${port}`, '--hold', '5m', '--heartbeat', '1s'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  t.teardown(() => {
    if (!t.passed) t.log(`stdout:\n${out}\nstderr:\n${err}`);
  });
  await waitFor(() => out.includes('holding for 5m'), { timeout: 30_000, what: 'holding' });
  const handle = /handle=(\S+)/.exec(out)![1]!;

  resetOpen();
  await waitFor(() => /license connection lost/.test(out) || child.exitCode !== null, { timeout: 10_000, what: 'the heartbeat to meet the reset' });
  await waitFor(() => /resumed /.test(out) || child.exitCode !== null, { timeout: 20_000, what: 'the resume' });
  t.is(child.exitCode, null, `the client exited: ${err}`);
  t.regex(out, new RegExp(`resumed ${handle.replace('.', '\\.')} on `));
  t.notRegex(out + err, /license lost/);

  child.kill('SIGINT');
  t.is(await exited, 0, err);
  t.regex(out, /checked in\n$/);
});
