import test from 'ava';
import net from 'node:net';
import { HealthMonitor } from '../../src/health/health-monitor.ts';
import { ResponseWatch, type FailureSink } from '../../src/health/observe-response.ts';
import { waitFor } from '../helpers/wait.ts';
import { RecordingSubject, checkConfig, listen, type TestServer } from './support.ts';

/** A minimal forwarder wired the way observe-response.ts documents: pipe both ways, watch both directions. */
async function forwarder(upstreamPort: number, timeout: number, sink: FailureSink) {
  const watches: ResponseWatch[] = [];
  const server = await listen((client) => {
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    upstream.on('error', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
    const watch = new ResponseWatch(timeout, sink);
    watches.push(watch);
    client.on('data', watch.onClientData);
    upstream.on('data', watch.onServerData);
    client.once('close', () => {
      watch.close();
      upstream.destroy();
    });
  });
  return { server, watches };
}

class Sink implements FailureSink {
  readonly reasons: string[] = [];
  reportFailure(reason: string): void {
    this.reasons.push(reason);
  }
}

async function client(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  let received = '';
  socket.setEncoding('utf8').on('data', (d: string) => (received += d));
  socket.on('error', () => {});
  return { socket, received: () => received };
}

const echo = () => listen((s) => s.on('data', (d: Buffer) => s.write(d)));
const silent = () => listen(() => {});

function closeAll(...servers: TestServer[]) {
  return Promise.all(servers.map((s) => s.close()));
}

test('answered requests report nothing', async (t) => {
  const upstream = await echo();
  const sink = new Sink();
  // A timeout no echo through this process takes, even on a busy machine: a report here could only be a bug.
  const fwd = await forwarder(upstream.port, ANSWERED_TIMEOUT, sink);
  t.teardown(() => closeAll(fwd.server, upstream));
  const c = await client(fwd.server.port);
  t.teardown(() => c.socket.destroy());
  for (let i = 1; i <= 10; i++) {
    c.socket.write(`HEARTBEAT ${i}\n`);
    await waitFor(() => c.received().endsWith(`HEARTBEAT ${i}\n`), { what: `answer ${i}` });
  }
  const quietFrom = Date.now();
  await waitFor(() => Date.now() - quietFrom > ANSWERED_TIMEOUT + 100, { interval: 50, what: 'a timeout of quiet' });
  t.deepEqual(sink.reasons, []);
  t.false(fwd.watches[0]!.waiting);
});

const ANSWERED_TIMEOUT = 1_500;

test('client bytes with no answer within the timeout report one failure per silence', async (t) => {
  const upstream = await silent();
  const sink = new Sink();
  const fwd = await forwarder(upstream.port, 150, sink);
  t.teardown(() => closeAll(fwd.server, upstream));
  const c = await client(fwd.server.port);
  t.teardown(() => c.socket.destroy());
  const sent = Date.now();
  c.socket.write('CHECKOUT LS-DYNA\n');
  c.socket.write('CHECKOUT LS-DYNA\n');
  await waitFor(() => sink.reasons.length === 1, { what: 'a report' });
  t.true(Date.now() - sent >= 140, 'not before the timeout');
  t.deepEqual(sink.reasons, ['no response within 150ms']);
  const after = Date.now();
  await waitFor(() => Date.now() - after > 400, { interval: 50, what: 'more quiet' });
  t.is(sink.reasons.length, 1, 'one report per silence, not one per timeout period');
  c.socket.write('HEARTBEAT\n');
  await waitFor(() => sink.reasons.length === 2, { what: 'a second report for new client bytes' });
  t.pass();
});

test('a connection that closes before the timeout reports nothing', async (t) => {
  const upstream = await silent();
  const sink = new Sink();
  const fwd = await forwarder(upstream.port, 200, sink);
  t.teardown(() => closeAll(fwd.server, upstream));
  const c = await client(fwd.server.port);
  c.socket.write('HELLO\n');
  await waitFor(() => fwd.watches[0]?.waiting, { what: 'armed' });
  c.socket.destroy();
  await waitFor(() => fwd.watches[0]?.waiting === false, { what: 'closed' });
  const from = Date.now();
  await waitFor(() => Date.now() - from > 500, { interval: 50, what: 'past the timeout' });
  t.deepEqual(sink.reasons, []);
});

test('with a HealthMonitor as the sink, silences count as failed checks and fall marks the server DOWN', async (t) => {
  const upstream = await silent();
  // The monitor's own checks are tcp and pass (the hung server accepts); only live traffic shows it.
  const subject = new RecordingSubject('127.0.0.1', { main: upstream.port });
  // The tcp check's own timeout is generous (a busy machine must not fail it); the watch's is 150 ms.
  const monitor = new HealthMonitor(subject, checkConfig({ interval: 60_000, fastInterval: 60_000, fall: 2, timeout: 10_000, observe: 'response' }));
  monitor.start();
  await waitFor(() => monitor.state === 'up', { what: 'UP by tcp check' });
  const fwd = await forwarder(upstream.port, 150, monitor);
  t.teardown(() => {
    monitor.stop();
    return closeAll(fwd.server, upstream);
  });
  const a = await client(fwd.server.port);
  const b = await client(fwd.server.port);
  t.teardown(() => {
    a.socket.destroy();
    b.socket.destroy();
  });
  a.socket.write('HEARTBEAT\n');
  await waitFor(() => monitor.statusText === 'UP 1/2', { what: 'one failure' });
  b.socket.write('HEARTBEAT\n');
  await waitFor(() => monitor.state === 'down', { what: 'DOWN' });
  t.deepEqual(subject.transitions.at(-1), { state: 'down', reason: 'no response within 150ms' });
});
