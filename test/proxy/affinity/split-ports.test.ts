/**
 * SPEC 2.3 at scale: 2,000 clients, each with its own address, check out on the license port and draw tokens on
 * the token port through the balancer, three licd servers in one tier. With affinity by source no client is
 * split (zero UNKNOWN_HANDLE), even when its two connections are opened at the same instant (haproxy #3243);
 * without affinity a generic balancer splits most of them.
 */
import test from 'ava';
import type { SpawnedLicd } from '../../helpers/licd.ts';
import type { ProxyRuntime } from '../../../src/proxy/runtime.ts';
import { clientAddress, handleOf, licdProxy, Line, runBounded, spawnLicds, stopAll } from './support.ts';

const NAMES = ['primary', 'secondary', 'tertiary'];
const CLIENTS = 2_000;
const IN_FLIGHT = 200;
const DEADLINE = 180_000;

let licds: SpawnedLicd[] = [];
test.before(async () => {
  licds = await spawnLicds(null, NAMES);
});
test.after.always(() => stopAll(licds));

type Outcome = 'granted' | 'unknown_handle' | string;

function classify(answer: string | null): Outcome {
  if (answer?.startsWith('GRANTED')) return 'granted';
  if (answer === 'ERR UNKNOWN_HANDLE') return 'unknown_handle';
  return answer ?? 'no answer';
}

/** Connect license port, CHECKOUT, then connect the token port and draw tokens under the handle. */
async function sequentialClient(rt: ProxyRuntime, addr: string): Promise<Outcome> {
  const lic = await Line.connect(rt.port('license'), addr);
  try {
    const handle = handleOf(await lic.request('CHECKOUT LS-DYNA'));
    if (!handle) return 'checkout failed';
    const tok = await Line.connect(rt.port('tokens'), addr);
    try {
      return classify(await tok.request(`TOKENS ${handle} 4`));
    } finally {
      tok.destroy();
    }
  } finally {
    lic.destroy();
  }
}

/** Both TCP connects started together, before either completes; TOKENS waits for the handle. */
async function simultaneousClient(rt: ProxyRuntime, addr: string): Promise<Outcome> {
  const lic = Line.open(rt.port('license'), addr);
  const tok = Line.open(rt.port('tokens'), addr);
  try {
    await Promise.all([lic.connected, tok.connected]);
    const handle = handleOf(await lic.request('CHECKOUT LS-DYNA'));
    if (!handle) return 'checkout failed';
    return classify(await tok.request(`TOKENS ${handle} 4`));
  } finally {
    lic.destroy();
    tok.destroy();
  }
}

function tally(outcomes: Outcome[]): Map<Outcome, number> {
  const m = new Map<Outcome, number>();
  for (const o of outcomes) m.set(o, (m.get(o) ?? 0) + 1);
  return m;
}

for (const [title, client, prefix] of [
  ['one after the other', sequentialClient, 11],
  ['opened at the same instant (haproxy #3243)', simultaneousClient, 12],
] as const) {
  test.serial(`by source: ${CLIENTS} clients, license then token port ${title}: zero UNKNOWN_HANDLE`, async (t) => {
    t.timeout(DEADLINE + 30_000);
    const rt = await licdProxy(t, licds, NAMES, { by: 'source' });
    const outcomes = await runBounded(CLIENTS, IN_FLIGHT, DEADLINE, (i) => client(rt, clientAddress(prefix, i)));
    const counts = tally(outcomes);
    t.log(Object.fromEntries(counts));
    t.is(counts.get('unknown_handle') ?? 0, 0);
    t.is(counts.get('granted'), CLIENTS);

    const pool = rt.pool('lic')!.snapshot();
    t.is(pool.affinity.by, 'source');
    t.is(pool.affinity.misses, CLIENTS, 'each client balanced once, on its first connection');
    t.is(pool.affinity.hits, CLIENTS, 'its second connection followed the binding');
    t.is(pool.affinity.bindings, CLIENTS);
    t.is(pool.servers.reduce((n, s) => n + s.bindings, 0), CLIENTS);
    for (const s of pool.servers) t.true(s.bindings > CLIENTS / 6, `${s.name} took its share of clients (${s.bindings})`);
  });
}

test.serial(`by none: a generic (round robin) balancer splits many of ${CLIENTS} clients`, async (t) => {
  t.timeout(DEADLINE + 30_000);
  const rt = await licdProxy(t, licds, NAMES, { by: 'none' });
  const outcomes = await runBounded(CLIENTS, IN_FLIGHT, DEADLINE, (i) => sequentialClient(rt, clientAddress(13, i)));
  const counts = tally(outcomes);
  const split = counts.get('unknown_handle') ?? 0;
  t.log({ ...Object.fromEntries(counts), splitRatio: (split / CLIENTS).toFixed(2) });
  // Where the token connection lands depends on how many other clients were placed in between: about 2/3 of
  // clients split when that is random, up to all of them in lock-step, fewer when the interleaving happens to
  // come round to the same server (seen: 20% on a loaded machine, 89% on a quiet one). Assert only that a
  // generic balancer does split clients, and a good share of them.
  t.true(split > CLIENTS * 0.1, `failures do occur: ${split} of ${CLIENTS}`);
  t.is(split + (counts.get('granted') ?? 0), CLIENTS, 'every client either succeeded or was split, nothing else');
  t.is(rt.pool('lic')!.snapshot().affinity.by, 'none');
});
