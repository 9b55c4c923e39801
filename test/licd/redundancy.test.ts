/**
 * Redundant licd sets (SPEC 4.3) as real processes: election, synchronous replication, RESUME after a master
 * crash, the status line, and the serving rules of a triad and a backup pair.
 */
import test from 'ava';
import { LicenseClient } from '../../src/client/license-client.ts';
import { parseLmstat } from '../../src/client/lmstat-parser.ts';
import { loadLicdConfig } from '../../src/config/licd-config.ts';
import { Forwarder, LicdCluster } from '../helpers/licd-cluster.ts';
import { LineClient } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';

const HANDLE = /^GRANTED handle=(\S+) feature=(\S+) count=(\d+)$/;

async function cluster(t: import('ava').ExecutionContext, spec: Parameters<typeof LicdCluster.start>[0]): Promise<LicdCluster> {
  const set = await LicdCluster.start(spec);
  t.teardown(async () => {
    if (!t.passed) t.log(set.dump());
    await set.close();
  });
  return set;
}

async function line(t: import('ava').ExecutionContext, port: number): Promise<LineClient> {
  const c = await LineClient.connect(port);
  t.teardown(() => c.destroy());
  return c;
}

test('a triad elects the lowest order; the others answer NOT_MASTER and show UP without (MASTER)', async (t) => {
  const set = await cluster(t, { mode: 'triad' });
  t.is(await set.waitSynced(), 0);
  const b = await line(t, set.members[1]!.ports.license);
  t.is(await b.request('CHECKOUT LS-DYNA'), 'ERR NOT_MASTER master=a');
  t.is(await b.request('RESUME a.1'), 'ERR NOT_MASTER master=a');
  const text = (await b.request('STATUS', 5000)) + '\n' + (await b.readUntil('END')).join('\n');
  const st = parseLmstat(text);
  t.is(st.redundancy?.state, 'paired and synced');
  t.is(st.redundancy?.mode, 'triad');
  t.regex(text, /^b: license server UP v1\.0$/m);
  t.regex(text, /^Redundancy: triad, paired and synced$/m);
  const tb = await line(t, set.members[1]!.ports.tokens);
  t.is(await tb.request('TOKENS a.1 2'), 'ERR NOT_MASTER master=a');
  const a = await line(t, set.members[0]!.ports.license);
  t.regex(await a.request('CHECKOUT LS-DYNA'), HANDLE);
  const atext = (await a.request('STATUS')) + '\n' + (await a.readUntil('END')).join('\n');
  t.regex(atext, /^a: license server UP \(MASTER\) v1\.0$/m);
});

test('a grant is on every follower before the client sees GRANTED; the master crash loses nothing and RESUME keeps the handle', async (t) => {
  const set = await cluster(t, { mode: 'triad', features: [{ name: 'LS-DYNA', count: 2 }, { name: 'MPPDYNA', count: 8, kind: 'tokens' }] });
  t.is(await set.waitSynced(), 0);
  const a = await line(t, set.members[0]!.ports.license);
  const first = await a.request("CHECKOUT LS-DYNA");
  t.regex(first, HANDLE);
  const [, handle] = HANDLE.exec(first)!;
  const tok = await line(t, set.members[0]!.ports.tokens);
  t.is(await tok.request(`TOKENS ${handle} 3`), 'GRANTED tokens=3 feature=MPPDYNA');
  // Killed right after the answers: nothing more was sent.
  await set.kill(0);
  const m = await set.waitMaster({ not: 0 });
  t.is(m, 1);
  const b = await line(t, set.members[1]!.ports.license);
  t.is(await b.request(`RESUME ${handle}`), `GRANTED handle=${handle} feature=LS-DYNA count=1`);
  const st = (await set.status(1))!;
  t.is(st.features[0]!.inUse, 1, 'the resumed seat is counted once');
  t.is(st.features[1]!.inUse, 3, 'its tokens are still counted (reserved for the handle)');
  // Re-issuing TOKENS for the same handle reclaims the reservation; nothing is drawn twice.
  const tb = await line(t, set.members[1]!.ports.tokens);
  t.is(await tb.request(`TOKENS ${handle} 3`), 'GRANTED tokens=3 feature=MPPDYNA');
  t.is((await set.status(1))!.features[1]!.inUse, 3);
  t.is(await tb.request(`TOKENS ${handle} 2`), 'GRANTED tokens=2 feature=MPPDYNA');
  t.is((await set.status(1))!.features[1]!.inUse, 5);
  // One seat left, exactly.
  t.regex(await b.request('CHECKOUT LS-DYNA'), HANDLE);
  t.regex(await b.request('CHECKOUT LS-DYNA'), /^DENIED feature=LS-DYNA reason=EXHAUSTED/);
  // The follower that remains holds the same picture.
  await waitFor(async () => (await set.status(2))?.features[0]?.inUse === 2, { what: 'follower c in sync' });
});

test('the client library resumes its handles by itself after the master dies', async (t) => {
  const set = await cluster(t, { mode: 'backup' });
  t.is(await set.waitSynced(), 0);
  // The client talks to a stand-in for the balancer, which sends new connections to the member that serves.
  const fwd = await Forwarder.start(set.members[0]!.ports.license);
  t.teardown(() => fwd.close());
  const port = fwd.port;
  const c = await LicenseClient.connect('127.0.0.1', port, { resume: { minDelay: 50, maxDelay: 300 } });
  t.teardown(() => c.destroy());
  await c.hello('alice', 'ws1');
  const g = await c.checkout('LS-DYNA');
  const resumed = new Promise<unknown>((r) => c.once('resumed', r));
  await set.kill(0);
  fwd.target = set.members[1]!.ports.license;
  const r = (await resumed) as { resumed: string[]; lost: unknown[] };
  t.deepEqual(r.resumed, [g.handle]);
  t.deepEqual(r.lost, []);
  t.deepEqual(c.handles, [g.handle]);
  const st = (await set.status(1))!;
  t.true(st.master);
  t.is(st.features[0]!.inUse, 1);
  t.is(st.redundancy?.state, 'peer not available');
  await c.checkin(g.handle);
  await waitFor(async () => (await set.status(1))?.features[0]?.inUse === 0, { what: 'checked in on the backup' });
});

test('the example configs in conf/examples/licd form consistent sets (peers point at each other, orders distinct)', (t) => {
  const sets = { pair: ['pair-primary', 'pair-backup'], triad: ['triad-1', 'triad-2', 'triad-3'] };
  for (const [kind, names] of Object.entries(sets)) {
    const cs = names.map((n) => loadLicdConfig(`conf/examples/licd/${n}.yaml`));
    t.deepEqual(cs.map((c) => c.redundancy!.order), names.map((_, i) => i), kind);
    for (const c of cs) {
      t.is(c.redundancy!.mode, kind === 'pair' ? 'backup' : 'triad');
      const others = cs.filter((o) => o !== c).map((o) => `${o.server.host}:${o.server.ports.peer}`).sort();
      t.deepEqual(c.redundancy!.peers.map((p) => `${p.host}:${p.port}`).sort(), others, c.server.name);
      for (const p of Object.values(c.server.ports)) t.false((p! >= 27100 && p! <= 27130) || p === 31010 || p === 31011);
    }
  }
});
