import test from 'ava';
import { licdForTest } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';

const FEATURES = [
  { name: 'LS-DYNA', count: 5 },
  { name: 'MPPDYNA', count: 16, kind: 'tokens' as const },
];

async function setup(t: { teardown(fn: () => unknown): void }, heartbeatTimeout = '300ms') {
  const { licd, connect } = await licdForTest(t, { features: FEATURES, heartbeatTimeout });
  const used = (f: string) => licd.server.status().features.find((x) => x.name === f)!.inUse;
  return { licd, connect, used };
}

test('a silent session is ended after heartbeat_timeout: seats and tokens freed, both connections closed', async (t) => {
  const { licd, connect, used } = await setup(t);
  const c = await connect(licd.ports.license);
  // Before the session's traffic: the silence licd times is measured from after it (a lower bound).
  const started = Date.now();
  const h = /handle=(\S+)/.exec(await c.request('CHECKOUT LS-DYNA count=2'))![1]!;
  const tk = await connect(licd.ports.tokens);
  t.is(await tk.request(`TOKENS ${h} 4`), 'GRANTED tokens=4 feature=MPPDYNA');
  await c.closed;
  await tk.closed;
  t.true(Date.now() - started >= 250, 'not before the timeout');
  t.is(used('LS-DYNA'), 0);
  t.is(used('MPPDYNA'), 0);
});

test('heartbeats keep a session alive; traffic on its token connection counts too', async (t) => {
  // licd runs in this process: a stall of the busy machine as long as the timeout is real silence to it. A second
  // of timeout, heartbeats 50 ms apart: only a stall twenty times their gap would end a session here.
  const { licd, connect, used } = await setup(t, '1s');
  const a = await connect(licd.ports.license);
  const b = await connect(licd.ports.license);
  t.regex(await a.request('CHECKOUT LS-DYNA'), /^GRANTED/);
  const hb = /handle=(\S+)/.exec(await b.request('CHECKOUT LS-DYNA'))![1]!;
  const tk = await connect(licd.ports.tokens);
  t.is(await tk.request(`TOKENS ${hb} 2`), 'GRANTED tokens=2 feature=MPPDYNA');
  // ~3 s: three times the timeout. `a` heartbeats on its license port; `b` only talks on its token port.
  const until = Date.now() + 3_000;
  while (Date.now() < until) {
    t.is(await a.request('HEARTBEAT'), 'OK');
    t.is(await tk.request('HEARTBEAT'), 'OK');
    await new Promise((r) => setTimeout(r, 50));
  }
  t.false(a.isClosed);
  t.false(b.isClosed);
  t.is(used('LS-DYNA'), 2);
  t.is(used('MPPDYNA'), 2);
  await a.closed; // then silence ends both
  await b.closed;
  await waitFor(() => used('LS-DYNA') === 0 && used('MPPDYNA') === 0);
});

test('an idle token connection that never drew is closed after heartbeat_timeout', async (t) => {
  const { licd, connect } = await setup(t);
  const tk = await connect(licd.ports.tokens);
  await tk.closed;
  t.is(licd.server.status().connections.tokens, 0);
});
