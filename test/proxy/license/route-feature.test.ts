/**
 * `route: feature` (SPEC 8.2): a licd connection reaches a server that serves the feature of its first CHECKOUT,
 * whatever the balance would have picked; HELLO is answered by the proxy and replayed to that server; lines are
 * read however TCP cuts them; hostile or silent clients are answered in licd syntax and closed within bounds.
 */
import test from 'ava';
import { captureLogger } from '../../helpers/proxy.ts';
import { LineClient } from '../../helpers/licd.ts';
import { waitFor } from '../../helpers/wait.ts';
import { balancer, CHECK, inUse, licds, serverLines } from './support.ts';

async function solvers(t: Parameters<typeof licds>[0]) {
  return licds(t, [
    { name: 'a', features: [{ name: 'EXPLICIT', count: 50 }, { name: 'IMPLICIT', count: 50 }] },
    { name: 'b', features: [{ name: 'EM', count: 50 }, { name: 'THERMAL', count: 50 }] },
    { name: 'c', features: [{ name: 'EXPLICIT', count: 50 }, { name: 'THERMAL', count: 50 }] },
  ]);
}

function yaml(servers: Awaited<ReturnType<typeof solvers>>, extra = ''): string {
  return `
global: { log_level: info }
pools:
  solvers:
    route: feature
    balance: roundrobin
    check: ${CHECK}
${extra}
    servers:
${serverLines(servers)}
frontends:
  - { name: solvers, listen: 127.0.0.1:0, pool: solvers }
`;
}

const OWNERS: Record<string, string[]> = { EXPLICIT: ['a', 'c'], IMPLICIT: ['a'], EM: ['b'], THERMAL: ['b', 'c'] };

test('every checkout reaches a server that has its feature; one that only one server has always reaches it', async (t) => {
  t.timeout(60_000);
  const servers = await solvers(t);
  const app = await balancer(t, yaml(servers));
  const port = app.runtime.port('solvers');
  const seen: Record<string, Set<string>> = {};
  for (let i = 0; i < 40; i++) {
    const feature = Object.keys(OWNERS)[i % 4]!;
    const c = await LineClient.connect(port);
    t.is(await c.request(`HELLO user=u${i} host=ws${i}`), 'OK server=solvers proto=1', 'the proxy answers HELLO before a server is chosen');
    const answer = await c.request(`CHECKOUT ${feature}`);
    const m = /^GRANTED handle=([a-z])\.\S+ feature=(\S+) count=1$/.exec(answer);
    t.truthy(m, answer);
    t.true(OWNERS[feature]!.includes(m![1]!), `${feature} granted by ${m![1]}`);
    (seen[feature] ??= new Set()).add(m![1]!);
    c.destroy();
  }
  t.deepEqual([...seen.IMPLICIT!], ['a']);
  t.deepEqual([...seen.EM!], ['b']);
  // Features on two servers are still balanced between them.
  t.is(seen.EXPLICIT!.size, 2);
  t.is(seen.THERMAL!.size, 2);
  const rows = (await import('../../../src/proxy/license-session/checkout-counters.ts')).checkoutCountersOf(app.runtime.pool('solvers')!).rows();
  t.is(rows.reduce((n, r) => n + r.granted, 0), 40, 'each grant counted once');
  t.is(rows.find((r) => r.server === 'b' && r.feature === 'EM')!.granted, 10);
});

test('HELLO is replayed to the chosen server: the seat is held in the client\'s name', async (t) => {
  const servers = await solvers(t);
  const app = await balancer(t, yaml(servers));
  const c = await LineClient.connect(app.runtime.port('solvers'));
  t.teardown(() => c.destroy());
  t.is(await c.request('HELLO user=alice host=ws12 display=:0'), 'OK server=solvers proto=1');
  t.is(await c.request('HEARTBEAT'), 'OK', 'answered by the proxy too');
  t.is(await c.request('HELLO user=bob host=ws13'), 'OK server=solvers proto=1', 'a later HELLO replaces the first');
  t.regex(await c.request('CHECKOUT EM'), /^GRANTED handle=b\./);
  t.true([...app.runtime.live].every((x) => x.license === null && x.state === 'open'), 'after the grant: the plain forwarding callbacks');
  const users = servers[1]!.licd.server.status().features.find((f) => f.name === 'EM')!.users;
  t.is(users.length, 1);
  t.like(users[0], { user: 'bob', host: 'ws13' });
  // The server's own answer to the replayed HELLO was dropped: the next answer is the next request's.
  t.is(await c.request('HEARTBEAT'), 'OK');
  t.is(await c.request('STATUS json').then((l) => (JSON.parse(l) as { server: string }).server), 'b');
});

test('a CHECKOUT cut across TCP segments (and HELLO + CHECKOUT in one) is read whole', async (t) => {
  const servers = await solvers(t);
  const app = await balancer(t, yaml(servers));
  const port = app.runtime.port('solvers');
  const c = await LineClient.connect(port);
  t.teardown(() => c.destroy());
  const pieces = ['HELLO user=s host=h\nCHE', 'CKOUT IMPL', 'ICIT count', '=2\r', '\n'];
  let sent = 0;
  for (const p of pieces) {
    c.write(p);
    sent += p.length;
    // Each piece arrives on its own before the next is sent.
    await waitFor(() => [...app.runtime.live].some((x) => x.bytesIn >= sent), { what: `${sent} bytes at the proxy` });
  }
  t.is(await c.next(), 'OK server=solvers proto=1');
  t.regex(await c.next(), /^GRANTED handle=a\.\S+ feature=IMPLICIT count=2$/);
  t.is(inUse(servers[0]!.licd, 'IMPLICIT'), 2);

  const d = await LineClient.connect(port);
  t.teardown(() => d.destroy());
  d.write('HELLO user=p host=h\nCHECKOUT EM\nHEARTBEAT\n');
  t.deepEqual([await d.next(), (await d.next()).slice(0, 17), await d.next()], ['OK server=solvers proto=1', 'GRANTED handle=b.', 'OK']);
});

test('a feature no server has: DENIED UNKNOWN_FEATURE from the proxy, and the client may go on', async (t) => {
  const servers = await solvers(t);
  const app = await balancer(t, yaml(servers));
  const c = await LineClient.connect(app.runtime.port('solvers'));
  t.teardown(() => c.destroy());
  t.is(await c.request('CHECKOUT NASTRAN'), 'DENIED feature=NASTRAN reason=UNKNOWN_FEATURE available=0');
  t.false(c.isClosed);
  t.regex(await c.request('CHECKOUT THERMAL'), /^GRANTED handle=[bc]\./);
  t.is(app.runtime.pool('solvers')!.servers.reduce((n, s) => n + s.counters.total, 0), 1, 'the unknown feature reached no server');
});

test('a second CHECKOUT for another feature stays on the first one\'s server; one that server lacks gets its ERR UNKNOWN_FEATURE', async (t) => {
  const servers = await solvers(t);
  const app = await balancer(t, yaml(servers));
  const c = await LineClient.connect(app.runtime.port('solvers'));
  t.teardown(() => c.destroy());
  t.regex(await c.request('CHECKOUT IMPLICIT'), /^GRANTED handle=a\./);
  t.regex(await c.request('CHECKOUT EXPLICIT'), /^GRANTED handle=a\./, 'a has it: granted there');
  t.is(await c.request('CHECKOUT EM'), 'ERR UNKNOWN_FEATURE', 'a lacks EM: the connection is plain forwarding by now, a answers');
  t.is(inUse(servers[1]!.licd, 'EM'), 0);
  t.is(inUse(servers[0]!.licd, 'IMPLICIT'), 1);
});

test('bad input before CHECKOUT: an over-long line, binary garbage, a client that never sends CHECKOUT', async (t) => {
  t.timeout(60_000);
  const servers = await solvers(t);
  const cap = captureLogger();
  const app = await balancer(t, yaml(servers, '    timeouts: { connect: 400ms }'), { log: cap.log });
  const port = app.runtime.port('solvers');
  const total = () => app.runtime.pool('solvers')!.servers.reduce((n, s) => n + s.counters.total, 0);

  const long = await LineClient.connect(port);
  long.write(`CHECKOUT ${'X'.repeat(5000)}`);
  t.is(await long.next(), 'ERR LINE_TOO_LONG');
  await long.closed;

  const garbage = await LineClient.connect(port);
  garbage.write(Buffer.from([0x00, 0xff, 0x1b, 0x5b, 0x32, 0x4a, 0x07, 0x0a]));
  t.is(await garbage.next(), 'ERR BAD_COMMAND');
  garbage.write(Buffer.from([0x43, 0x48, 0x45, 0x43, 0x4b, 0x4f, 0x55, 0x54, 0x20, 0x1b, 0x0a])); // CHECKOUT ESC
  t.is(await garbage.next(), 'ERR BAD_ARGUMENT');
  t.regex(await garbage.request('CHECKOUT EM'), /^GRANTED handle=b\./, 'still usable after the garbage');
  garbage.destroy();

  const noNewline = await LineClient.connect(port);
  noNewline.write(Buffer.alloc(6000, 0xfe));
  t.is(await noNewline.next(), 'ERR LINE_TOO_LONG');
  await noNewline.closed;
  t.is(total(), 1, 'only the good checkout reached a server');

  const silent = await LineClient.connect(port);
  t.is(await silent.request('HELLO user=z host=h'), 'OK server=solvers proto=1');
  for (let i = 0; i < 3; i++) t.is(await silent.request('HEARTBEAT'), 'OK');
  await silent.closed;
  const line = await waitFor(() => cap.closed().find((l) => l.end === 'no_checkout'), { what: 'the log line' });
  t.regex(String(line.error), /no CHECKOUT .* within 400ms/);
  t.is(total(), 1);
});

test('with affinity by handle (first line read on a stream socket): HELLO, feature routing and handle lines all work', async (t) => {
  const servers = await solvers(t);
  const app = await balancer(t, yaml(servers, '    affinity: { by: handle }'));
  const port = app.runtime.port('solvers');
  const c = await LineClient.connect(port);
  t.teardown(() => c.destroy());
  t.is(await c.request('HELLO user=h host=ws'), 'OK server=solvers proto=1');
  const granted = await c.request('CHECKOUT IMPLICIT');
  t.regex(granted, /^GRANTED handle=a\./);
  t.is(await c.request('HEARTBEAT'), 'OK');
  const handle = /handle=(\S+)/.exec(granted)![1]!;
  // A handle line first: routed to the server the handle names (a), which answers for it.
  const d = await LineClient.connect(port);
  t.teardown(() => d.destroy());
  t.is(await d.request(`CHECKIN ${handle}`), 'ERR UNKNOWN_HANDLE', 'a answers: the handle belongs to another connection');
  t.is(await d.request('STATUS json').then((l) => (JSON.parse(l) as { server: string }).server), 'a');
});
