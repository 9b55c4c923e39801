/**
 * Alerts from a real `licproxy run`: a licd killed with SIGKILL reaches the webhook as `down`, and a webhook that
 * never answers leaves forwarding untouched (a client connection through the proxy completes while the POST hangs).
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { once } from 'node:events';
import { spawnLicd } from '../helpers/licd.ts';
import { startEcho } from '../helpers/backend.ts';
import { request } from '../helpers/stats.ts';
import { waitFor } from '../helpers/wait.ts';
import { frontendPort, runBalancer } from './run-balancer.ts';
import { startReceiver } from './receiver.ts';

test('a licd killed with SIGKILL reaches the webhook as a down alert; /metrics counts the delivery', async (t) => {
  const rx = await startReceiver(t);
  const licd = await spawnLicd({ name: 'primary' });
  t.teardown(licd.stop);
  const lp = await runBalancer(t, `pools:
  lic:
    check: { type: tcp, interval: 100ms, fast_interval: 50ms, down_interval: 100ms, timeout: 200ms, rise: 1, fall: 1 }
    servers:
      - { name: primary, address: 127.0.0.1:${licd.ports.license} }
frontends:
  - { name: lic, listen: 127.0.0.1:0, pool: lic }
alerts:
  - { url: "${rx.url}", name: ops, format: json, events: [down, up] }
`);
  await waitFor(async () => (await request(lp.stats, '/metrics')).body.includes('licproxy_server_up{pool="lic",server="primary"} 1'), { what: 'primary UP', timeout: 10_000 });
  const killedAt = Date.now();
  licd.child.kill('SIGKILL');
  await waitFor(() => rx.received.some((r) => r.json.event === 'down'), { what: 'the down alert', timeout: 15_000 });
  const got = rx.received.find((r) => r.json.event === 'down')!;
  t.log(`server death to webhook received: ${got.at - killedAt} ms (check interval 100ms, fall 1)`);
  t.like(got.json, { source: 'licproxy', event: 'down', pool: 'lic', server: 'primary', to: 'DOWN' });
  // No `up` was sent for the first UP at start.
  t.false(rx.received.some((r) => r.json.event === 'up'));
  await waitFor(async () => (await request(lp.stats, '/metrics')).body.includes('licproxy_alerts_sent_total{alert="ops",result="ok"} 1'), { what: 'the delivery counted' });
  const metrics = (await request(lp.stats, '/metrics')).body;
  t.true(metrics.includes('licproxy_alerts_dropped_total{alert="ops"} 0'));
});

test('a webhook that never answers does not hold forwarding: a client connection completes while the POST hangs', async (t) => {
  const rx = await startReceiver(t, () => 'hang');
  const live = await startEcho(t);
  const victim = await startEcho(t);
  const lp = await runBalancer(t, `pools:
  echo:
    check: { type: tcp, interval: 100ms, fast_interval: 50ms, down_interval: 100ms, timeout: 200ms, rise: 1, fall: 1 }
    servers:
      - { name: live, address: 127.0.0.1:${live.port} }
      - { name: victim, address: 127.0.0.1:${victim.port} }
frontends:
  - { name: echo, listen: 127.0.0.1:0, pool: echo }
alerts:
  - { url: "${rx.url}", name: stuck, events: [down], timeout: 1m, retries: 0 }
`);
  const port = frontendPort(readFileSync(lp.file, 'utf8'), 'echo');
  await waitFor(async () => (await request(lp.stats, '/metrics')).body.includes('licproxy_server_up{pool="echo",server="victim"} 1'), { what: 'victim UP', timeout: 10_000 });
  await victim.close();
  await waitFor(() => rx.hanging() >= 1, { what: 'the webhook POST to hang', timeout: 10_000 });
  // Several round trips through the proxy while the POST stays unanswered.
  for (let i = 0; i < 5; i++) {
    const c = connect(port, '127.0.0.1');
    await once(c, 'connect');
    c.write(`ping ${i}\n`);
    let echoed = '';
    c.setEncoding('utf8').on('data', (s: string) => (echoed += s));
    await waitFor(() => echoed === `ping ${i}\n`, { what: `echo ${i} through the proxy` });
    c.end();
    await once(c, 'close');
  }
  t.is(rx.hanging(), 1, 'the webhook POST was still unanswered meanwhile');
  t.true((await request(lp.stats, '/health')).status === 200);
});

test('with global.workers: 2 the primary alone sends: one down alert per server death', async (t) => {
  const rx = await startReceiver(t);
  const victim = await startEcho(t);
  const lp = await runBalancer(t, `global: { workers: 2 }
pools:
  echo:
    check: { type: tcp, interval: 100ms, fast_interval: 50ms, down_interval: 100ms, timeout: 200ms, rise: 1, fall: 1 }
    servers:
      - { name: victim, address: 127.0.0.1:${victim.port} }
frontends:
  - { name: echo, listen: 127.0.0.1:0, pool: echo }
alerts:
  - { url: "${rx.url}", name: ops, events: [down, up], min_interval: 0s }
`);
  await waitFor(async () => (await request(lp.stats, '/metrics')).body.includes('licproxy_workers 2'), { what: 'two workers', timeout: 20_000 });
  await waitFor(async () => (await request(lp.stats, '/metrics')).body.includes('licproxy_server_up{pool="echo",server="victim"} 1'), { what: 'victim UP', timeout: 10_000 });
  const port = victim.port;
  await victim.close();
  await waitFor(() => rx.received.some((r) => r.json.event === 'down'), { what: 'the down alert', timeout: 10_000 });
  // Back on the same port: the up alert comes after any duplicate down would have.
  const back = await startEchoOn(t, port);
  t.truthy(back);
  await waitFor(() => rx.received.some((r) => r.json.event === 'up'), { what: 'the up alert', timeout: 10_000 });
  t.deepEqual(rx.received.map((r) => r.json.event), ['down', 'up']);
});

/** An echo server on a given port (a server coming back where it was). */
async function startEchoOn(t: import('ava').ExecutionContext, port: number): Promise<import('node:net').Server> {
  const { createServer } = await import('node:net');
  const server = createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return server;
}
