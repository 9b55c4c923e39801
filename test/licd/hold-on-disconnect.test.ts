/**
 * `redundancy.hold_on_disconnect` (src/licd/PROTOCOL.md "Lifetimes"): in a set, a license connection lost without
 * QUIT (the balancer it came through was killed) leaves its sessions detached for that long, so the client's RESUME
 * on a new connection finds them; a QUIT still frees at once, and a session nobody resumes is freed when the hold
 * ends. Without the key (the default) a lost connection frees its seats at once, as before.
 */
import test, { type ExecutionContext } from 'ava';
import { LicdCluster } from '../helpers/licd-cluster.ts';
import { LineClient } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';

const HANDLE = /^GRANTED handle=(\S+) feature=LS-DYNA count=1$/;

async function triad(t: ExecutionContext, hold?: string) {
  const set = await LicdCluster.start({ mode: 'triad', features: [{ name: 'LS-DYNA', count: 5 }], ...(hold ? { holdOnDisconnect: hold } : {}) });
  t.teardown(async () => {
    if (!t.passed) t.log(set.dump());
    await set.close();
  });
  const m = await set.waitSynced();
  const port = set.members[m]!.ports.license;
  const inUse = async () => (await set.status(m))?.features[0]?.inUse;
  /** The seat's user once licd has seen its connection close (it waits with a resume deadline), else undefined. */
  const detached = async () => (await set.status(m))?.features[0]?.users?.find((u) => u.resumeBy !== undefined);
  const client = async (user: string) => {
    const c = await LineClient.connect(port);
    t.teardown(() => c.destroy());
    t.regex(await c.request(`HELLO user=${user} host=ws`), /^OK /);
    return c;
  };
  return { set, m, inUse, detached, client };
}

test('hold_on_disconnect: a lost connection\'s session waits for a RESUME on a new connection; QUIT frees at once', async (t) => {
  t.timeout(60_000);
  const { inUse, detached, client } = await triad(t, '20s');
  const a = await client('alice');
  const handle = HANDLE.exec(await a.request('CHECKOUT LS-DYNA'))![1]!;
  a.destroy();
  // licd has seen the close (else RESUME would take the handle from the live connection, which proves nothing).
  await waitFor(detached, { what: 'the session detached with a resume deadline' });
  t.is(await inUse(), 1, 'still counted while it waits');
  const b = await client('alice');
  t.is(await b.request(`RESUME ${handle}`), `GRANTED handle=${handle} feature=LS-DYNA count=1`);
  t.is(await inUse(), 1, 'resumed, counted once');
  t.is(await b.request('QUIT'), 'OK');
  await waitFor(async () => (await inUse()) === 0, { what: 'QUIT frees at once' });
});

test('hold_on_disconnect: a session nobody resumes is freed when the hold ends', async (t) => {
  t.timeout(60_000);
  const { inUse, client } = await triad(t, '1s');
  const a = await client('bob');
  t.regex(await a.request('CHECKOUT LS-DYNA'), HANDLE);
  a.destroy();
  await waitFor(async () => (await inUse()) === 0, { timeout: 15_000, what: 'the seat freed after the 1s hold' });
});

test('without hold_on_disconnect a lost connection frees its seat at once: RESUME answers UNKNOWN_HANDLE', async (t) => {
  t.timeout(60_000);
  const { inUse, client } = await triad(t);
  const a = await client('carol');
  const handle = HANDLE.exec(await a.request('CHECKOUT LS-DYNA'))![1]!;
  a.destroy();
  await waitFor(async () => (await inUse()) === 0, { what: 'the seat freed' });
  const b = await client('carol');
  t.is(await b.request(`RESUME ${handle}`), 'ERR UNKNOWN_HANDLE');
});
