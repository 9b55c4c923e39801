/**
 * Handles are capabilities (PROTOCOL.md "Handles"): random, shown in full only in the owner's GRANTED, and the only
 * key to RESUME, CHECKIN and TOKENS. A thief who reads STATUS (answered to anyone, also through the balancer) learns
 * the public id and the user, never the handle, and cannot take, free or draw under someone else's seat.
 */
import test from 'ava';
import { parseLmstat } from '../../src/client/lmstat-parser.ts';
import { publicHandle } from '../../src/licd/handles.ts';
import type { LicdStatus } from '../../src/licd/status.ts';
import { serverOfHandleLine } from '../../src/proxy/affinity/first-line.ts';
import { LicdCluster } from '../helpers/licd-cluster.ts';
import { LineClient, licdForTest } from '../helpers/licd.ts';

const GRANTED = /^GRANTED handle=(\S+) feature=LS-DYNA count=1$/;
const FEATURES = [
  { name: 'LS-DYNA', count: 4 },
  { name: 'MPPDYNA', count: 32, kind: 'tokens' as const },
];

/** Every handle-like word a STATUS / STATUS json answer shows. */
async function whatStatusShows(c: LineClient): Promise<{ text: string; json: LicdStatus }> {
  const text = [await c.request('STATUS'), ...(await c.readUntil('END'))].join('\n');
  const json = JSON.parse(await c.request('STATUS json')) as LicdStatus;
  return { text, json };
}

test('handles: 192 random bits after the server name; the balancer still reads the server from them', async (t) => {
  const { licd, connect } = await licdForTest(t, { name: 'primary', features: FEATURES });
  const c = await connect(licd.ports.license);
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) {
    const h = GRANTED.exec(await c.request('CHECKOUT LS-DYNA'))![1]!;
    t.regex(h, /^primary\.[0-9a-f]{48}$/);
    t.is(serverOfHandleLine(`TOKENS ${h} 8`), 'primary');
    t.is(serverOfHandleLine(`RESUME ${h}`), 'primary');
    seen.add(h.slice(-32));
  }
  t.is(seen.size, 4, 'no two secrets alike');
});

test('a thief with STATUS cannot RESUME, CHECKIN or draw TOKENS under a seat it does not own; the owner still can', async (t) => {
  const { licd, connect } = await licdForTest(t, { name: 'primary', features: FEATURES });
  const victim = await connect(licd.ports.license);
  t.is(await victim.request('HELLO user=alice host=ws1'), 'OK server=primary proto=1');
  const handle = GRANTED.exec(await victim.request('CHECKOUT LS-DYNA'))![1]!;

  const thief = await connect(licd.ports.license);
  const { text, json } = await whatStatusShows(thief);
  t.false(text.includes(handle), 'STATUS text never shows the full handle');
  t.false(JSON.stringify(json).includes(handle.slice(-32)), 'STATUS json shows no part of the secret');
  const shown = json.features[0]!.users[0]!.handle;
  t.is(shown, publicHandle(handle));
  t.regex(shown, /^primary\.[0-9a-f]{16}$/);
  t.is(parseLmstat(text).features[0]!.users[0]!.handle, shown, 'the lmstat parser reads the public id');
  t.deepEqual(json.sessions.find((s) => s.user === 'alice')!.handles, [shown]);

  // Everything the thief could make of what it saw.
  const guesses = [shown, `${shown}${'0'.repeat(32)}`, handle.slice(0, -1), `${handle.slice(0, -1)}${handle.endsWith('0') ? '1' : '0'}`, handle.toUpperCase()];
  for (const g of guesses) {
    t.is(await thief.request(`RESUME ${g}`), 'ERR UNKNOWN_HANDLE', `RESUME ${g}`);
    t.is(await thief.request(`CHECKIN ${g}`), 'ERR UNKNOWN_HANDLE', `CHECKIN ${g}`);
  }
  const tokThief = await connect(licd.ports.tokens);
  for (const g of guesses) t.is(await tokThief.request(`TOKENS ${g} 4`), 'ERR UNKNOWN_HANDLE', `TOKENS ${g}`);
  // A standalone daemon has nothing to resume, even with the full handle on another connection.
  t.is(await thief.request(`RESUME ${handle}`), 'ERR UNKNOWN_HANDLE');
  t.is(await thief.request(`CHECKIN ${handle}`), 'ERR UNKNOWN_HANDLE', 'CHECKIN belongs to the owning connection');

  const st = licd.server.status();
  t.is(st.features[0]!.inUse, 1, 'the victim still holds its seat');
  t.is(st.features[1]!.inUse, 0, 'no token drawn under it');
  t.is(await victim.request('HEARTBEAT'), 'OK');

  // The owner's own token connection, presenting the full handle, draws.
  const tok = await connect(licd.ports.tokens);
  t.is(await tok.request(`TOKENS ${handle} 4`), 'GRANTED tokens=4 feature=MPPDYNA');
  t.is(await victim.request(`CHECKIN ${handle}`), 'OK');
  t.is(licd.server.status().features[0]!.inUse, 0);
});

test('triad: a thief with the public id cannot RESUME a replicated seat after a failover; the owner resumes it', async (t) => {
  t.timeout(60_000);
  const set = await LicdCluster.start({ mode: 'triad', features: FEATURES });
  t.teardown(async () => {
    if (!t.passed) t.log(set.dump());
    await set.close();
  });
  t.is(await set.waitSynced(), 0);
  const open = async (port: number) => {
    const c = await LineClient.connect(port);
    t.teardown(() => c.destroy());
    return c;
  };
  const victim = await open(set.members[0]!.ports.license);
  const handle = GRANTED.exec(await victim.request('CHECKOUT LS-DYNA'))![1]!;
  const shown = (await set.status(1))!.features[0]!.users[0]!.handle;
  t.is(shown, publicHandle(handle), 'a follower shows the public id only');
  await set.kill(0);
  const m = await set.waitMaster({ not: 0 });
  const thief = await open(set.members[m]!.ports.license);
  t.is(await thief.request(`RESUME ${shown}`), 'ERR UNKNOWN_HANDLE');
  t.is(await thief.request(`RESUME ${handle.slice(0, -1)}${handle.endsWith('0') ? '1' : '0'}`), 'ERR UNKNOWN_HANDLE', 'one hex digit off');
  const tok = await open(set.members[m]!.ports.tokens);
  t.is(await tok.request(`TOKENS ${shown} 2`), 'ERR UNKNOWN_HANDLE');
  const owner = await open(set.members[m]!.ports.license);
  t.is(await owner.request(`RESUME ${handle}`), `GRANTED handle=${handle} feature=LS-DYNA count=1`);
  t.is(await tok.request(`TOKENS ${handle} 2`), 'GRANTED tokens=2 feature=MPPDYNA');
  t.is(await owner.request(`CHECKIN ${handle}`), 'OK');
});
