/**
 * `retry_denied: true` (SPEC 8.2): the first CHECKOUT of a connection denied EXHAUSTED by one server is replayed on
 * another server with a free seat; the client sees one answer. Seat counts are read from the servers themselves,
 * so a double grant (a seat taken on both) or a lost one would show.
 */
import test from 'ava';
import { LineClient, spawnLicd } from '../../helpers/licd.ts';
import { checkoutCountersOf } from '../../../src/proxy/license-session/checkout-counters.ts';
import { balancer, inUse, licds, serverLines } from './support.ts';

const F = [{ name: 'F', count: 2 }];

function yaml(lines: string, check = '{ type: lmstat, interval: 200ms, fast_interval: 100ms, down_interval: 500ms, timeout: 500ms, rise: 1, fall: 3 }'): string {
  return `
global: { log_level: silent }
pools:
  p:
    balance: first
    retry_denied: true
    check: ${check}
    servers:
${lines}
frontends:
  - { name: p, listen: 127.0.0.1:0, pool: p }
`;
}

/** Takes `n` seats of F on a server directly (not through the proxy). */
async function fill(connect: () => Promise<LineClient>, n: number): Promise<LineClient> {
  const c = await connect();
  for (let i = 0; i < n; i++) if (!(await c.request('CHECKOUT F')).startsWith('GRANTED')) throw new Error('could not fill');
  return c;
}

test('a checkout denied by a full server is granted by one with a free seat; one answer; no seat taken twice', async (t) => {
  const [a, b] = await licds(t, [
    { name: 'a', features: F },
    { name: 'b', features: F },
  ]);
  await fill(a!.connect, 2);
  const app = await balancer(t, yaml(serverLines([a!, b!])));
  const port = app.runtime.port('p');
  const clients: LineClient[] = [];
  for (let i = 0; i < 2; i++) {
    const c = await LineClient.connect(port);
    clients.push(c);
    t.teardown(() => c.destroy());
    t.is(await c.request(`HELLO user=u${i} host=h`), 'OK server=a proto=1', 'balance: first sends every client to a');
    t.regex(await c.request('CHECKOUT F'), /^GRANTED handle=b\./, 'a is full: granted by b');
    t.is(await c.request('HEARTBEAT'), 'OK', 'exactly one answer reached the client');
    t.is(inUse(a!.licd, 'F'), 2, 'a: only its own two holders');
    t.is(inUse(b!.licd, 'F'), i + 1, 'b: one seat per client, never two');
  }
  // Both full now: the client gets the denial (after b denied too, or at once when b's check already says full).
  const c = await LineClient.connect(port);
  t.teardown(() => c.destroy());
  t.regex(await c.request('CHECKOUT F'), /^DENIED feature=F reason=EXHAUSTED/);
  t.is(await c.request('HEARTBEAT'), 'OK');
  t.is(inUse(a!.licd, 'F'), 2);
  t.is(inUse(b!.licd, 'F'), 2);
  const rows = checkoutCountersOf(app.runtime.pool('p')!).rows();
  t.like(rows.find((r) => r.server === 'b'), { granted: 2, retriedSaved: 2 });
  t.is(rows.reduce((n, r) => n + r.denied, 0), 1, 'the one denial the client saw');
  // The denied client stays connected to a server and keeps working (a checkin elsewhere frees a seat for it).
  clients[0]!.destroy();
  t.regex((await c.request('STATUS json')).slice(0, 20), /"server":"[ab]"/);
});

test('never retried after a GRANTED on the connection', async (t) => {
  const [a, b] = await licds(t, [
    { name: 'a', features: F },
    { name: 'b', features: F },
  ]);
  await fill(a!.connect, 1);
  const app = await balancer(t, yaml(serverLines([a!, b!])));
  const c = await LineClient.connect(app.runtime.port('p'));
  t.teardown(() => c.destroy());
  t.regex(await c.request('CHECKOUT F'), /^GRANTED handle=a\./);
  t.regex(await c.request('CHECKOUT F'), /^DENIED feature=F reason=EXHAUSTED/, 'the second CHECKOUT is answered by a, as is');
  t.is(inUse(a!.licd, 'F'), 2);
  t.is(inUse(b!.licd, 'F'), 0, 'b was never asked');

  // A RESUME/handle line before the first CHECKOUT may hold a seat: no retry either.
  const d = await LineClient.connect(app.runtime.port('p'));
  t.teardown(() => d.destroy());
  t.is(await d.request('CHECKIN a.0'), 'ERR UNKNOWN_HANDLE');
  t.regex(await d.request('CHECKOUT F'), /^DENIED feature=F reason=EXHAUSTED/);
  t.is(inUse(b!.licd, 'F'), 0);
});

test('the other server dies mid-retry: the next one grants, or the client keeps the first denial and its connection', async (t) => {
  t.timeout(60_000);
  const [a, c] = await licds(t, [
    { name: 'a', features: F },
    { name: 'c', features: F },
  ]);
  const b = await spawnLicd({ name: 'b', features: F });
  t.teardown(() => b.stop());
  await fill(a!.connect, 2);
  // Slow checks: the proxy still believes b is UP with free seats when it is killed.
  const slow = '{ type: lmstat, interval: 10s, fast_interval: 10s, down_interval: 10s, timeout: 1s, rise: 1, fall: 5 }';
  const lines = [
    `      - { name: a, address: 127.0.0.1:${a!.licd.ports.license} }`,
    `      - { name: b, address: 127.0.0.1:${b.ports.license}, weight: 100 }`,
    `      - { name: c, address: 127.0.0.1:${c!.licd.ports.license}, tier: 1 }`,
  ].join('\n');
  const app = await balancer(t, yaml(lines, slow));
  b.child.kill('SIGKILL');
  await b.exited;
  const x = await LineClient.connect(app.runtime.port('p'));
  t.teardown(() => x.destroy());
  // a denies; b (fewest connections per weight, tier 0) is tried first and refuses the connect; c grants.
  t.regex(await x.request('CHECKOUT F'), /^GRANTED handle=c\./);
  t.is(inUse(a!.licd, 'F'), 2);
  t.is(inUse(c!.licd, 'F'), 1);

  await fill(c!.connect, 1);
  const y = await LineClient.connect(app.runtime.port('p'));
  t.teardown(() => y.destroy());
  t.is(await y.request('HELLO user=y host=h'), 'OK server=a proto=1');
  // a denies; b is dead; c is full but its last check (10 s ago) said free: tried, denied; the answer is a denial.
  t.regex(await y.request('CHECKOUT F'), /^DENIED feature=F reason=EXHAUSTED/);
  t.is(await y.request('HEARTBEAT'), 'OK', 'still connected to a server');
  t.is(inUse(a!.licd, 'F'), 2);
  t.is(inUse(c!.licd, 'F'), 2);
});

test('the other server hangs mid-retry (SIGSTOP): after timeouts.connect the next one is tried', async (t) => {
  t.timeout(60_000);
  const [a, c] = await licds(t, [
    { name: 'a', features: F },
    { name: 'c', features: F },
  ]);
  const b = await spawnLicd({ name: 'b', features: F });
  t.teardown(async () => {
    b.child.kill('SIGCONT');
    await b.stop();
  });
  await fill(a!.connect, 2);
  const slow = '{ type: lmstat, interval: 10s, fast_interval: 10s, down_interval: 10s, timeout: 1s, rise: 1, fall: 5 }';
  const lines = [
    `      - { name: a, address: 127.0.0.1:${a!.licd.ports.license} }`,
    `      - { name: b, address: 127.0.0.1:${b.ports.license} }`,
    `      - { name: c, address: 127.0.0.1:${c!.licd.ports.license}, tier: 1 }`,
  ].join('\n');
  const app = await balancer(t, yaml(lines, slow).replace('    retry_denied: true', '    retry_denied: true\n    timeouts: { connect: 500ms }'));
  b.child.kill('SIGSTOP');
  const x = await LineClient.connect(app.runtime.port('p'));
  t.teardown(() => x.destroy());
  // a denies; b (tier 0) accepts the connection but never answers; c grants once b's time is up.
  t.regex(await x.request('CHECKOUT F', 10_000), /^GRANTED handle=c\./);
  t.is(await x.request('HEARTBEAT'), 'OK');
  t.is(inUse(a!.licd, 'F'), 2);
  t.is(inUse(c!.licd, 'F'), 1);
});
