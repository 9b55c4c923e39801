/**
 * Idempotent CHECKOUT (PROTOCOL.md "CHECKOUT", `req=`): a checkout granted and replicated by a master whose
 * connection (or the master itself) died before the GRANTED arrived is re-attached by the same CHECKOUT with the
 * same request id on the new master: same handle, no second seat. The id is a secret like a handle: a different or
 * wrong one never reaches the session, one still held by a live connection is not taken, and status never shows it.
 * A licd triad of real processes.
 */
import test from 'ava';
import { LicdCluster } from '../helpers/licd-cluster.ts';
import { LineClient } from '../helpers/licd.ts';

const GRANTED = /^GRANTED handle=(\S+) feature=F count=1$/;
const REQ = 'victim-req-0123456789abcdef';

/** The handle of a GRANTED answer; anything else fails with the answer itself. */
function handleOf(answer: string): string {
  const m = GRANTED.exec(answer);
  if (m === null) throw new Error(`expected GRANTED, got ${JSON.stringify(answer)}`);
  return m[1]!;
}

async function triad(t: import('ava').ExecutionContext) {
  const set = await LicdCluster.start({ mode: 'triad', features: [{ name: 'F', count: 5 }], heartbeatTimeout: '10m', resumeWindow: '5m' });
  t.teardown(async () => {
    if (!t.passed) t.log(set.dump());
    await set.close();
  });
  t.is(await set.waitSynced(), 0);
  const open = async (member: number, user = 'u') => {
    const c = await LineClient.connect(set.members[member]!.ports.license);
    t.teardown(() => c.destroy());
    t.regex(await c.request(`HELLO user=${user} host=h`), /^OK server=/);
    return c;
  };
  const inUse = async (member: number) => (await set.status(member))!.features[0]!.inUse;
  return { set, open, inUse };
}

test('CHECKOUT req=: 16-64 characters of [A-Za-z0-9_-], else BAD_ARGUMENT; a valid one is granted as usual', async (t) => {
  t.timeout(60_000);
  const { open, inUse } = await triad(t);
  const c = await open(0);
  for (const bad of ['short', 'x'.repeat(65), 'has.dot-0123456789abc', 'ümlaut-0123456789abcdef']) {
    t.is(await c.request(`CHECKOUT F req=${bad}`), 'ERR BAD_ARGUMENT', bad);
  }
  t.regex(await c.request(`CHECKOUT F req=${'A'.repeat(16)}`), GRANTED);
  t.regex(await c.request(`CHECKOUT F req=${'z_-9'.repeat(16)}`), GRANTED);
  t.is(await inUse(0), 2);
});

test('the new master re-attaches a replicated grant whose connection died: same handle, no second seat; another req takes a new seat', async (t) => {
  t.timeout(90_000);
  const { set, open, inUse } = await triad(t);
  const victim = await open(0);
  const handle = handleOf(await victim.request(`CHECKOUT F req=${REQ}`));
  // Both the connection and its master die (the GRANTED is "lost" with them).
  await set.kill(0);
  victim.destroy();
  const m = await set.waitMaster({ not: 0 });
  t.is(await inUse(m), 1, 'the replicated session is held for its client');

  // A thief who knows the user, host and feature (STATUS shows them) but not the request id gets a seat of its own.
  const thief = await open(m);
  const stolen = handleOf(await thief.request('CHECKOUT F req=thief-guess-0123456789abcdef'));
  t.not(stolen, handle);
  t.is(await thief.request(`CHECKIN ${stolen}`), 'OK');
  // The right id under another user is not the victim's session either.
  const other = await open(m, 'someone-else');
  const otherHandle = handleOf(await other.request(`CHECKOUT F req=${REQ}`));
  t.not(otherHandle, handle);
  t.is(await other.request(`CHECKIN ${otherHandle}`), 'OK');
  t.is(await inUse(m), 1);

  // The replayed CHECKOUT: the session it was granted, under the same handle; the seat count does not move.
  const again = await open(m);
  t.is(await again.request(`CHECKOUT F req=${REQ}`), `GRANTED handle=${handle} feature=F count=1`);
  t.is(await inUse(m), 1, 'no second seat');
  t.is((await set.status(m))!.features[0]!.users[0]!.resumeBy, undefined, 'no resume deadline any more: it is held');
  // Asking again with the same id while that session is held by a live connection is a fresh checkout.
  const fresh = handleOf(await again.request(`CHECKOUT F req=${REQ}`));
  t.not(fresh, handle);
  // A different id is a new checkout.
  const next = handleOf(await again.request('CHECKOUT F req=another-req-0123456789abcdef'));
  t.not(next, handle);
  t.is(await inUse(m), 3);
  // The re-attached session is the client's as any other: CHECKIN frees it.
  t.is(await again.request(`CHECKIN ${handle}`), 'OK');
  t.is(await inUse(m), 2);
});

test('the request id is a secret: never in STATUS (text or json) on any member', async (t) => {
  t.timeout(60_000);
  const { set, open } = await triad(t);
  const c = await open(0);
  t.regex(await c.request(`CHECKOUT F req=${REQ}`), GRANTED);
  for (const i of [0, 1, 2]) {
    const s = await open(i);
    s.send('STATUS');
    const lines: string[] = [];
    for (let line = await s.next(5_000); line !== 'END'; line = await s.next(5_000)) lines.push(line);
    const json = await s.request('STATUS json');
    t.false(lines.join('\n').includes(REQ), `status text of ${set.members[i]!.name}`);
    t.false(json.includes(REQ), `status json of ${set.members[i]!.name}`);
  }
  t.false(set.dump().includes(REQ), 'nor in any log');
});
