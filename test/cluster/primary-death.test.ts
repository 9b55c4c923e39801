/**
 * A primary's death cuts nothing it need not (issue 15): with `global.workers: 2`, SIGKILL of the primary leaves
 * its workers forwarding the license connections they hold (licd keeps every seat), each says so in one log line,
 * and a replacement primary started from the same file serves new clients. With the listening socket passed as
 * systemd's socket activation passes it (LISTEN_FDS), the port does not even close meanwhile: a client that
 * connects between the kill and the replacement is served by the replacement.
 *
 * Real licproxy processes (the CLI), a real licd, real loopback sockets.
 */
import { connect } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { holdSocket } from '../helpers/held-socket.ts';
import { LineClient, startLicd, type InProcessLicd } from '../helpers/licd.ts';
import { settles, waitFor } from '../helpers/wait.ts';
import { closedLines, isAlive, runCluster, type RunningCluster } from './support.ts';

const HELD = 40;

function config(licd: InProcessLicd, tokenFile: string, listen: string, accept = 'round_robin', global = ''): string {
  return `
global:
  workers: 2
  worker_accept: ${accept}
  grace: 2s${global}
stats:
  listen: 127.0.0.1:0
  admin: { token_file: ${tokenFile} }
pools:
  lic:
    balance: leastconn
    ports: { license: 1 }
    check: { type: tcp, interval: 200ms, fall: 2, rise: 1 }
    servers:
      - { name: alpha, host: 127.0.0.1, ports: { license: ${licd.ports.license} } }
frontends:
  - { name: license, listen: ${listen}, pool: lic, port: license }
`;
}

function seatsInUse(licd: InProcessLicd): number {
  return licd.server.status().features.find((f) => f.name === 'LS-DYNA')?.inUse ?? -1;
}

async function upAndServing(c: RunningCluster): Promise<void> {
  await waitFor(async () => (await c.json()).pools[0]!.servers[0]!.status === 'UP', { timeout: 15_000, what: 'alpha UP' });
}

/** `n` license connections through the proxy, each holding one seat (CHECKOUT granted). */
async function holdSeats(port: number, n: number): Promise<LineClient[]> {
  const clients: LineClient[] = [];
  for (let i = 0; i < n; i++) {
    const c = await LineClient.connect(port);
    clients.push(c);
    const granted = await c.request('CHECKOUT LS-DYNA');
    if (!granted.startsWith('GRANTED')) throw new Error(`checkout ${i}: ${granted}`);
  }
  return clients;
}

/** Every held connection still forwards both ways: a HEARTBEAT reaches licd and its OK comes back. */
async function heartbeats(clients: LineClient[]): Promise<number> {
  const answers = await Promise.all(clients.map((c) => c.request('HEARTBEAT', 30_000).catch(() => 'lost')));
  return answers.filter((a) => a === 'OK').length;
}

function orphanLines(c: RunningCluster): Record<string, unknown>[] {
  return c.lines().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('the primary is gone'));
}

async function killPrimary(t: ExecutionContext, c: RunningCluster): Promise<number[]> {
  const workers = await c.workerPids();
  t.is(workers.length, 2);
  c.child.kill('SIGKILL');
  await c.exited;
  // Each worker notices the lost channel and says so once.
  await waitFor(() => orphanLines(c).length === 2, { timeout: 10_000, what: 'both workers log the lost primary' });
  return workers;
}

const survives = test.macro(async (t, accept: 'round_robin' | 'shared') => {
  const licd = await startLicd({ name: 'alpha', features: [{ name: 'LS-DYNA', count: 200 }] });
  t.teardown(() => licd.stop());
  const first = await runCluster(t, (tf) => config(licd, tf, '127.0.0.1:0', accept));
  const port = await first.port('license');
  await upAndServing(first);
  const clients = await holdSeats(port, HELD);
  t.teardown(() => clients.forEach((c) => c.destroy()));
  t.is(seatsInUse(licd), HELD);

  const workers = await killPrimary(t, first);
  for (const l of orphanLines(first)) t.is(l.level, 40, 'a warning');
  t.true(workers.every(isAlive), 'the workers outlive the primary');

  // Every held connection forwards; licd still counts every seat; none was closed.
  const kept = await heartbeats(clients);
  t.is(kept, HELD);
  t.is(seatsInUse(licd), HELD);
  t.false(clients.some((c) => c.isClosed));

  // The orphans closed their listening handles: a replacement from the same file binds the port and serves.
  const second = await runCluster(t, () => '', { sameFileAs: first });
  t.is(await second.port('license'), port);
  await upAndServing(second);
  const newcomer = await LineClient.connect(port);
  t.teardown(() => newcomer.destroy());
  t.regex(await newcomer.request('CHECKOUT LS-DYNA'), /^GRANTED /);
  t.is(seatsInUse(licd), HELD + 1);
  t.is(await heartbeats(clients), HELD, 'still forwarding with the replacement running');

  // Held connections that end are logged by the orphan that forwarded them, which exits once it holds none.
  for (const c of clients) c.destroy();
  await waitFor(() => workers.every((pid) => !isAlive(pid)), { timeout: 15_000, what: 'the orphaned workers exit once their connections end' });
  const closedByOrphans = closedLines(first).filter((l) => workers.includes(Number(l.pid)));
  t.is(closedByOrphans.length, HELD);
  await waitFor(() => seatsInUse(licd) === 1, { timeout: 5_000, what: 'licd frees the seats of the ended connections' });
  t.log(`worker_accept ${accept}: held connections kept across SIGKILL of the primary: ${kept}/${HELD}; seats lost: ${HELD - kept}`);
});

test('SIGKILL of the primary: the workers keep forwarding every held connection, licd loses no seat, a replacement serves new clients', survives, 'round_robin');
// With `shared` each worker holds the listening socket itself: it must close it for the replacement to bind.
test('the same with worker_accept: shared', survives, 'shared');

test('an orphaned worker closes what it still holds once global.orphan_grace has passed, then exits', async (t) => {
  const licd = await startLicd({ name: 'alpha', features: [{ name: 'LS-DYNA', count: 200 }] });
  t.teardown(() => licd.stop());
  const c = await runCluster(t, (tf) => config(licd, tf, '127.0.0.1:0', 'round_robin', '\n  orphan_grace: 1s'));
  const port = await c.port('license');
  await upAndServing(c);
  const clients = await holdSeats(port, 6);
  t.teardown(() => clients.forEach((x) => x.destroy()));
  const workers = await killPrimary(t, c);
  for (const l of orphanLines(c)) t.is(l.graceMs, 1_000);
  await waitFor(() => clients.every((x) => x.isClosed), { timeout: 30_000, what: 'the held connections closed at the end of orphan_grace' });
  await waitFor(() => workers.every((pid) => !isAlive(pid)), { timeout: 30_000, what: 'the orphaned workers exit' });
  t.true(c.lines().some((l) => l.msg === 'grace period over: closing the remaining connections'));
  await waitFor(() => seatsInUse(licd) === 0, { timeout: 5_000, what: 'licd frees the seats of the closed connections' });
});

test('socket activation (LISTEN_FDS): the port stays open across the primary SIGKILL; a client connecting in between is served by the replacement', async (t) => {
  const licd = await startLicd({ name: 'alpha', features: [{ name: 'LS-DYNA', count: 200 }] });
  t.teardown(() => licd.stop());
  const held = holdSocket();
  t.teardown(() => held.close());
  const listen = `127.0.0.1:${held.port}`;
  const first = await runCluster(t, (tf) => config(licd, tf, listen), { passFds: [held.fd] });
  t.truthy(
    first.lines().find((l) => l.msg === `socket activation: descriptor 3 (${listen}) serves frontend license`),
    'the primary names the passed socket and its frontend',
  );
  const port = await first.port('license');
  t.is(port, held.port);
  await upAndServing(first);
  const clients = await holdSeats(port, HELD);
  t.teardown(() => clients.forEach((c) => c.destroy()));

  const workers = await killPrimary(t, first);
  t.true(workers.every(isAlive));

  // No process listens now, but the socket is open: the connect completes (the kernel queues it).
  const waiting = await new Promise<LineClient | string>((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
  t.is(waiting, 'connected', 'the port is open between the kill and the replacement');
  const early = await LineClient.connect(port);
  t.teardown(() => early.destroy());
  // Answered once the replacement runs (its start-up under load may take long).
  const earlyAnswer = early.request('CHECKOUT LS-DYNA', 60_000).catch((e: Error) => e.message);

  t.is(await heartbeats(clients), HELD);
  t.is(seatsInUse(licd), HELD);

  const second = await runCluster(t, () => '', { sameFileAs: first, passFds: [held.fd] });
  t.is(await second.port('license'), held.port);
  t.regex(await settles(earlyAnswer, { timeout: 60_000, what: 'the queued client served by the replacement' }), /^GRANTED /);
  const newcomer = await LineClient.connect(port);
  t.teardown(() => newcomer.destroy());
  t.regex(await newcomer.request('CHECKOUT LS-DYNA'), /^GRANTED /);
  t.is(await heartbeats(clients), HELD);
  t.is(seatsInUse(licd), HELD + 2);
});
