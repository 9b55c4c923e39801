import test from 'ava';
import { LineClient, licdForTest } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';

const GRANT = /^GRANTED handle=t1\.[0-9a-f]+ feature=LS-DYNA count=(\d+)$/;

async function setup(t: { teardown(fn: () => unknown): void }, count: number) {
  const { licd, connect } = await licdForTest(t, { features: [{ name: 'LS-DYNA', count }] });
  const client = async (user: string) => {
    const c = await connect();
    await c.request(`HELLO user=${user} host=h`);
    return c;
  };
  return { licd, client };
}

test('queued checkouts are granted strictly in FIFO order as seats free', async (t) => {
  const { licd, client } = await setup(t, 2);
  const holder = await client('holder');
  const h = /handle=(\S+)/.exec(await holder.request('CHECKOUT LS-DYNA count=2'))![1]!;
  const waiters: LineClient[] = [];
  for (let i = 0; i < 4; i++) {
    const c = await client(`w${i}`);
    t.is(await c.request('CHECKOUT LS-DYNA queue=1'), `QUEUED position=${i + 1}`);
    waiters.push(c);
  }
  t.is(licd.server.status().features[0]!.queued, 4);
  // A newcomer without queue=1 does not jump the queue.
  const late = await client('late');
  t.is(await late.request('CHECKOUT LS-DYNA'), 'DENIED feature=LS-DYNA reason=EXHAUSTED available=0');
  t.is(await holder.request(`CHECKIN ${h}`), 'OK');
  t.regex(await waiters[0]!.next(), GRANT);
  t.regex(await waiters[1]!.next(), GRANT);
  await t.throwsAsync(waiters[2]!.next(300), { message: /no line/ });
  waiters[0]!.reset();
  t.regex(await waiters[2]!.next(), GRANT);
  waiters[1]!.end();
  t.regex(await waiters[3]!.next(), GRANT);
  await waitFor(() => licd.server.status().features[0]!.queued === 0);
  t.is(licd.server.status().features[0]!.inUse, 2);
});

test('a large request at the head is not overtaken by smaller ones behind it', async (t) => {
  const { licd, client } = await setup(t, 3);
  const a = await client('a');
  const b = await client('b');
  const ha = /handle=(\S+)/.exec(await a.request('CHECKOUT LS-DYNA count=2'))![1]!;
  t.regex(await b.request('CHECKOUT LS-DYNA'), GRANT);
  const big = await client('big');
  const small = await client('small');
  t.is(await big.request('CHECKOUT LS-DYNA count=3 queue=1'), 'QUEUED position=1');
  t.is(await small.request('CHECKOUT LS-DYNA count=1 queue=1'), 'QUEUED position=2');
  t.is(await a.request(`CHECKIN ${ha}`), 'OK');
  await t.throwsAsync(small.next(300), { message: /no line/ }, 'small waits behind big although 2 seats are free');
  b.destroy();
  t.regex(await big.next(), /count=3$/);
  t.is(licd.server.status().features[0]!.inUse, 3);
  // A queued client leaving frees its place without taking anything.
  big.destroy();
  t.regex(await small.next(), /count=1$/);
});

test('a closed queued connection leaves the queue; queued entries show in STATUS', async (t) => {
  const { licd, client } = await setup(t, 1);
  const a = await client('a');
  t.regex(await a.request('CHECKOUT LS-DYNA'), GRANT);
  const w = await client('waiter');
  t.is(await w.request('CHECKOUT LS-DYNA queue=1'), 'QUEUED position=1');
  a.send('STATUS');
  const lines = await a.readUntil('END');
  t.true(lines.some((l) => /^    waiter h h \(v1\.0\) \(t1\/\d+\) queued for 1 license$/.test(l)), lines.join('\n'));
  w.reset();
  await waitFor(() => licd.server.status().features[0]!.queued === 0, { what: 'queue emptied' });
  t.is(licd.server.status().features[0]!.inUse, 1);
});
