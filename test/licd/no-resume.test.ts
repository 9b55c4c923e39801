/**
 * `CHECKOUT ... resume=no` (src/licd/PROTOCOL.md "CHECKOUT"): a client that will never RESUME says so, and no member
 * keeps its seat for a RESUME once its connection or its master is gone: a new master frees it at once (not after
 * resume_window), a lost connection frees it at once even with `hold_on_disconnect`, and RESUME of its handle
 * answers ERR UNKNOWN_HANDLE. A session without the option (or a replicated record without the flag, from a member
 * that predates it) stays resumable. Real licd triads, plus the replicated state in-process for the old record.
 */
import test, { type ExecutionContext } from 'ava';
import { silentLogger } from '../../src/common/logger.ts';
import { FeaturePool } from '../../src/licd/feature-pool.ts';
import type { Grant } from '../../src/licd/grant.ts';
import { HandleMap } from '../../src/licd/handles.ts';
import { parsePeerMessage, type PeerMessage, type SessionRecord } from '../../src/licd/peer-messages.ts';
import { ReplicaState } from '../../src/licd/replica-state.ts';
import { LicdCluster } from '../helpers/licd-cluster.ts';
import { LineClient, startLicd } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';

const GRANTED = /^GRANTED handle=(\S+) feature=F count=1$/;

async function triad(t: ExecutionContext, opts: { count: number; holdOnDisconnect?: string }) {
  // resume_window 60s: a seat freed within this test is freed by resume=no, never by the window.
  const set = await LicdCluster.start({
    mode: 'triad',
    features: [{ name: 'F', count: opts.count }],
    heartbeatTimeout: '10m',
    resumeWindow: '60s',
    ...(opts.holdOnDisconnect ? { holdOnDisconnect: opts.holdOnDisconnect } : {}),
  });
  t.teardown(async () => {
    if (!t.passed) t.log(set.dump());
    await set.close();
  });
  const m = await set.waitSynced();
  const open = async (member: number, user: string) => {
    const c = await LineClient.connect(set.members[member]!.ports.license);
    t.teardown(() => c.destroy());
    t.regex(await c.request(`HELLO user=${user} host=ws`), /^OK server=/);
    return c;
  };
  const inUse = async (member: number) => (await set.status(member))?.features[0]?.inUse;
  return { set, m, open, inUse };
}

test('licd accepts CHECKOUT resume=no and resume=yes, refuses any other value; standalone frees it at the close', async (t) => {
  const d = await startLicd({ features: [{ name: 'F', count: 3 }] });
  t.teardown(d.stop);
  const c = await LineClient.connect(d.ports.license);
  t.teardown(() => c.destroy());
  for (const bad of ['resume=maybe', 'resume=NO', 'resume=0', 'resume=no resume=no']) t.is(await c.request(`CHECKOUT F ${bad}`), 'ERR BAD_ARGUMENT', bad);
  t.regex(await c.request('CHECKOUT F resume=yes'), GRANTED);
  const once = await LineClient.connect(d.ports.license);
  t.regex(await once.request('CHECKOUT F resume=no req=abcdefghijklmnop0123'), GRANTED);
  t.is(d.server.status().features[0]!.inUse, 2);
  once.destroy();
  await waitFor(() => d.server.status().features[0]!.inUse === 1, { what: 'the resume=no seat freed at the close' });
});

test('master killed: the new master frees a resume=no session at once (resume_window 60s); a resumable one is kept and resumes', async (t) => {
  t.timeout(90_000);
  const { set, m, open, inUse } = await triad(t, { count: 2 });
  const keeper = await open(m, 'keeper');
  const handle = GRANTED.exec(await keeper.request('CHECKOUT F'))![1]!;
  const once = await open(m, 'once');
  const onceHandle = GRANTED.exec(await once.request('CHECKOUT F resume=no'))![1]!;
  t.is(await inUse(m), 2);
  // Both replicated (the OK of a grant waits for a follower): every survivor counts the two seats until a master change.
  const survivors = [0, 1, 2].filter((i) => i !== m);
  for (const i of survivors) t.is(await inUse(i), 2, `follower ${i} holds both sessions`);

  await set.kill(m);
  keeper.destroy();
  once.destroy();
  const next = await set.waitMaster({ not: m });
  t.is(await inUse(next), 1, 'only the resumable session is kept by the new master');
  const users = (await set.status(next))!.features[0]!.users.map((u) => u.user);
  t.deepEqual(users, ['keeper']);

  // The last seat is free: a CHECKOUT gets it while the resumable session still waits for its client.
  const fresh = await open(next, 'fresh');
  t.regex(await fresh.request('CHECKOUT F'), GRANTED);
  t.is(await fresh.request('CHECKOUT F'), 'DENIED feature=F reason=EXHAUSTED available=0', 'never more than the count');

  const back = await open(next, 'once');
  t.is(await back.request(`RESUME ${onceHandle}`), 'ERR UNKNOWN_HANDLE');
  const keeperBack = await open(next, 'keeper');
  t.is(await keeperBack.request(`RESUME ${handle}`), `GRANTED handle=${handle} feature=F count=1`);
  t.is(await inUse(next), 2);
  const other = survivors.find((i) => i !== next)!;
  await waitFor(async () => (await inUse(other)) === 2 && (await set.status(other))!.features[0]!.users.every((u) => u.user !== 'once'), {
    timeout: 15_000,
    what: 'the other survivor counts the resumed and the fresh session, not the resume=no one',
  });
});

test('master frozen (SIGSTOP): the member that takes over frees the resume=no session; the frozen one, back, counts it no more', async (t) => {
  t.timeout(90_000);
  const { set, m, open, inUse } = await triad(t, { count: 3 });
  const once = await open(m, 'once');
  t.regex(await once.request('CHECKOUT F resume=no'), GRANTED);
  const keeper = await open(m, 'keeper');
  t.regex(await keeper.request('CHECKOUT F'), GRANTED);
  set.stop(m);
  const next = await set.waitMaster({ not: m });
  t.is(await inUse(next), 1);
  set.cont(m);
  // The old master steps down (its clients' connections close) and follows the new one: 1 seat everywhere.
  await waitFor(async () => (await set.statuses()).every((s) => s?.features[0]?.inUse === 1), { timeout: 20_000, what: '1 seat on every member' });
  t.pass();
});

test('hold_on_disconnect never applies to a resume=no session: its lost connection frees the seat at once', async (t) => {
  t.timeout(60_000);
  const { m, open, inUse, set } = await triad(t, { count: 5, holdOnDisconnect: '60s' });
  const held = await open(m, 'held');
  const heldHandle = GRANTED.exec(await held.request('CHECKOUT F'))![1]!;
  const once = await open(m, 'once');
  const onceHandle = GRANTED.exec(await once.request('CHECKOUT F resume=no'))![1]!;
  held.destroy();
  once.destroy();
  // The resumable one waits (with a deadline) for 60s; the resume=no one is gone as soon as licd sees its close.
  await waitFor(async () => (await set.status(m))?.features[0]?.users.some((u) => u.user === 'held' && u.resumeBy !== undefined), { what: 'the held session detached' });
  await waitFor(async () => (await inUse(m)) === 1, { timeout: 10_000, what: 'the resume=no seat freed' });
  const again = await open(m, 'once');
  t.is(await again.request(`RESUME ${onceHandle}`), 'ERR UNKNOWN_HANDLE');
  t.is(await again.request(`RESUME ${heldHandle}`), `GRANTED handle=${heldHandle} feature=F count=1`);
});

test('RESUME of a live resume=no handle from another connection answers ERR UNKNOWN_HANDLE and leaves it with its owner', async (t) => {
  t.timeout(60_000);
  const { m, open, inUse } = await triad(t, { count: 2 });
  const owner = await open(m, 'owner');
  const handle = GRANTED.exec(await owner.request('CHECKOUT F resume=no'))![1]!;
  const other = await open(m, 'owner');
  t.is(await other.request(`RESUME ${handle}`), 'ERR UNKNOWN_HANDLE');
  t.is(await owner.request(`CHECKIN ${handle}`), 'OK');
  t.is(await inUse(m), 0);
});

/** The replicated state of one follower, in-process. */
function replica() {
  const pool = new FeaturePool({ name: 'F', version: '1.0', count: 4, expires: null, expiresAt: null, kind: 'seats' });
  const grants = new HandleMap<Grant>();
  const state = new ReplicaState({ logger: silentLogger, licensePort: 1, knownPool: (n) => (n === 'F' ? pool : undefined), allPools: () => [pool], grants, liveSessions: () => [] });
  return { pool, state };
}

function grantOp(h: string, extra: string): PeerMessage | null {
  return parsePeerMessage(`{"t":"op","term":3,"seq":1,"op":"grant","r":{"h":"${h}","f":"F","n":1,"v":"1.0","u":"u","host":"h","d":"h","s":1,"tok":{}${extra}}}`);
}

test('replication: a record without nr (an older member) stays resumable; nr=1 is freed at a master change; other values are refused', (t) => {
  const old = grantOp('a.01112233445566778899aabbccddeeff0011223344556601', '');
  const once = grantOp('a.02112233445566778899aabbccddeeff0011223344556602', ',"nr":1');
  t.truthy(old, 'the old format parses');
  t.truthy(once);
  t.is(grantOp('a.x', ',"nr":true'), null);
  t.is(grantOp('a.x', ',"nr":0'), null);
  t.is(parsePeerMessage(`{"t":"sess","r":{"h":"a.y","f":"F","n":1,"v":"1.0","u":"u","host":"h","d":"h","s":1,"tok":{},"nr":2}}`), null);

  const { pool, state } = replica();
  for (const m of [old!, once!]) {
    const { t: _t, term: _term, seq: _seq, ...op } = m as Extract<PeerMessage, { t: 'op' }>;
    state.apply(op as Parameters<ReplicaState['apply']>[0]);
  }
  t.is(pool.inUse, 2);
  // The snapshot carries the flag on (only) the resume=no session, so a member synced from it frees it too.
  const snap = state.snapshot().sessions;
  t.deepEqual(
    snap.map((r: SessionRecord) => r.nr),
    [undefined, 1],
  );
  t.is(state.resume('a.02112233445566778899aabbccddeeff0011223344556602', { touch() {} }, 1), undefined, 'a resume=no session cannot be resumed');
  state.startServing(60_000);
  t.deepEqual(
    state.dropUnresumable().map((d) => d.handle),
    ['a.02112233445566778899aabbccddeeff0011223344556602'],
  );
  t.is(pool.inUse, 1);
  const g = state.resume('a.01112233445566778899aabbccddeeff0011223344556601', { touch() {} }, 1);
  t.truthy(g, 'the old-format session resumes');
  t.true(g!.resumable);
  t.is(pool.inUse, 1);
});
