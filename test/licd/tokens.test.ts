import test from 'ava';
import { publicHandle } from '../../src/licd/handles.ts';
import { licdForTest, type InProcessLicd } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';

const FEATURES = [
  { name: 'LS-DYNA', count: 2 },
  { name: 'MPPDYNA', count: 32, kind: 'tokens' as const },
  { name: 'MPPEXTRA', count: 8, kind: 'tokens' as const },
  { name: 'GONE', count: 8, kind: 'tokens' as const, expires: '2021-06-30' },
];

async function setup(t: { teardown(fn: () => unknown): void }) {
  const { licd, connect } = await licdForTest(t, { features: FEATURES });
  const license = await connect(licd.ports.license);
  const handle = /handle=(\S+)/.exec(await license.request('CHECKOUT LS-DYNA'))![1]!;
  return { licd, license, handle, tokens: () => connect(licd.ports.tokens) };
}

function used(licd: InProcessLicd, f: string): number {
  return licd.server.status().features.find((x) => x.name === f)!.inUse;
}

test('TOKENS draws from the first tokens feature, or from feature=; RELEASE gives back', async (t) => {
  const { licd, handle, tokens } = await setup(t);
  const c = await tokens();
  t.is(await c.request(`TOKENS ${handle} 16`), 'GRANTED tokens=16 feature=MPPDYNA');
  t.is(await c.request(`tokens ${handle} 4 feature=MPPEXTRA`), 'GRANTED tokens=4 feature=MPPEXTRA');
  t.is(used(licd, 'MPPDYNA'), 16);
  t.is(used(licd, 'MPPEXTRA'), 4);
  t.is(await c.request('RELEASE 6'), 'OK');
  t.is(used(licd, 'MPPDYNA'), 10);
  t.is(await c.request('RELEASE 4 feature=MPPEXTRA'), 'OK');
  t.is(used(licd, 'MPPEXTRA'), 0);
  t.is(await c.request('RELEASE 11'), 'ERR BAD_ARGUMENT', 'more than held');
  t.is(await c.request('RELEASE 0'), 'ERR BAD_ARGUMENT');
  t.is(await c.request('RELEASE'), 'ERR BAD_ARGUMENT');
  t.is(await c.request('HEARTBEAT'), 'OK');
  t.is(used(licd, 'MPPDYNA'), 10);
});

test('TOKENS denials and errors', async (t) => {
  const { licd, handle, tokens } = await setup(t);
  const c = await tokens();
  t.is(await c.request('TOKENS primary.1a 4'), 'ERR UNKNOWN_HANDLE', 'a handle of another server');
  t.is(await c.request('TOKENS t1.ffffffff 4'), 'ERR UNKNOWN_HANDLE');
  t.is(await c.request(`TOKENS ${handle} 33`), 'DENIED feature=MPPDYNA reason=COUNT available=32');
  t.is(await c.request(`TOKENS ${handle} 30`), 'GRANTED tokens=30 feature=MPPDYNA');
  t.is(await c.request(`TOKENS ${handle} 3`), 'DENIED feature=MPPDYNA reason=EXHAUSTED available=2');
  t.is(await c.request(`TOKENS ${handle} 1 feature=LS-DYNA`), 'DENIED feature=LS-DYNA reason=KIND available=1');
  t.is(await c.request(`TOKENS ${handle} 1 feature=NOPE`), 'ERR UNKNOWN_FEATURE');
  t.is(await c.request(`TOKENS ${handle} 1 feature=GONE`), 'ERR EXPIRED');
  for (const line of [`TOKENS ${handle}`, `TOKENS ${handle} 0`, `TOKENS ${handle} x`, `TOKENS ${handle} 1 color=red`, 'TOKENS']) {
    t.is(await c.request(line), 'ERR BAD_ARGUMENT', line);
  }
  for (const line of ['CHECKOUT LS-DYNA', 'STATUS', 'HELLO user=a host=b', 'BOGUS']) {
    t.is(await c.request(line), 'ERR BAD_COMMAND', line);
  }
  t.is(used(licd, 'MPPDYNA'), 30);
});

test('a token connection draws for one handle only', async (t) => {
  const { license, handle, tokens } = await setup(t);
  const other = /handle=(\S+)/.exec(await license.request('CHECKOUT LS-DYNA'))![1]!;
  const c = await tokens();
  t.is(await c.request(`TOKENS ${handle} 2`), 'GRANTED tokens=2 feature=MPPDYNA');
  t.is(await c.request(`TOKENS ${other} 2`), 'ERR BAD_ARGUMENT');
  t.is(await c.request(`TOKENS ${handle} 2`), 'GRANTED tokens=2 feature=MPPDYNA');
});

test('tokens are freed when the token connection closes (FIN and RST)', async (t) => {
  const { licd, handle, tokens } = await setup(t);
  const a = await tokens();
  const b = await tokens();
  t.is(await a.request(`TOKENS ${handle} 8`), 'GRANTED tokens=8 feature=MPPDYNA');
  t.is(await b.request(`TOKENS ${handle} 8`), 'GRANTED tokens=8 feature=MPPDYNA');
  a.end();
  await waitFor(() => used(licd, 'MPPDYNA') === 8, { what: 'FIN frees 8 tokens' });
  b.reset();
  await waitFor(() => used(licd, 'MPPDYNA') === 0, { what: 'RST frees 8 tokens' });
  t.is(used(licd, 'LS-DYNA'), 1, 'the seat stays with its license connection');
});

test('CHECKIN or closing the license session frees its tokens and closes its token connections', async (t) => {
  const { licd, license, handle, tokens } = await setup(t);
  const a = await tokens();
  t.is(await a.request(`TOKENS ${handle} 8`), 'GRANTED tokens=8 feature=MPPDYNA');
  t.is(await license.request(`CHECKIN ${handle}`), 'OK');
  await a.closed;
  t.is(used(licd, 'MPPDYNA'), 0);
  const h2 = /handle=(\S+)/.exec(await license.request('CHECKOUT LS-DYNA'))![1]!;
  const b = await tokens();
  t.is(await b.request(`TOKENS ${handle} 1`), 'ERR UNKNOWN_HANDLE', 'a checked-in handle is dead');
  t.is(await b.request(`TOKENS ${h2} 5`), 'GRANTED tokens=5 feature=MPPDYNA');
  license.reset();
  await b.closed;
  await waitFor(() => used(licd, 'MPPDYNA') === 0 && used(licd, 'LS-DYNA') === 0, { what: 'all freed' });
});

test('token draws appear in STATUS with the handle and the token port', async (t) => {
  const { licd, license, handle, tokens } = await setup(t);
  const c = await tokens();
  await c.request(`TOKENS ${handle} 12`);
  license.send('STATUS');
  const lines = await license.readUntil('END');
  const i = lines.indexOf('Users of MPPDYNA:  (Total of 32 licenses issued;  Total of 12 licenses in use)');
  t.true(i > 0);
  t.regex(lines[i + 3]!, new RegExp(`^    unknown 127\\.0\\.0\\.1 127\\.0\\.0\\.1 \\(v1\\.0\\) \\(t1/${licd.ports.tokens} ${publicHandle(handle).replace('.', '\\.')}\\), start \\w{3} \\d+/\\d+ \\d+:\\d\\d, 12 licenses$`));
});
