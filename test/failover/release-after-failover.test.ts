/**
 * A release caught by a failover is completed by the client library (PROTOCOL.md "CHECKIN"): the master is isolated
 * while a client checks in, so the CHECKIN gets no OK (its `end` cannot be acknowledged). The client keeps the
 * handle as releasing, and once the old master closes its connection it RESUMEs the handle on the new master and
 * checks it in there. Before, the handle was forgotten and the new master counted the seat for resume_window (60 s
 * here, longer than the wait below), which starved busy sets of seats after every isolation.
 */
import test from 'ava';
import { LicenseClient, type ResumeResult } from '../../src/client/license-client.ts';
import { followMaster } from '../helpers/chaos-campaign.ts';
import { Forwarder, LicdCluster } from '../helpers/licd-cluster.ts';
import { settles, waitFor } from '../helpers/wait.ts';

test('a CHECKIN answered without OK by an isolated master is completed on the next master', async (t) => {
  t.timeout(120_000);
  const set = await LicdCluster.start({
    mode: 'triad',
    heartbeat: '300ms',
    resumeWindow: '60s',
    features: [{ name: 'LS-DYNA', count: 5 }],
  });
  const fwd = await Forwarder.start();
  let stopFollowing: (() => Promise<void>) | null = null;
  let c: LicenseClient | null = null;
  t.teardown(async () => {
    c?.destroy();
    await stopFollowing?.();
    await fwd.close();
    await set.close();
  });
  const m = await set.waitSynced(30_000);
  fwd.target = set.members[m]!.ports.license;
  stopFollowing = followMaster(set, fwd);

  c = await LicenseClient.connect('127.0.0.1', fwd.port, { timeout: 10_000, resume: { giveUpAfter: 30_000 } });
  await c.hello('alice', 'ws1');
  const g = await c.checkout('LS-DYNA');
  const resumed = new Promise<ResumeResult>((resolve) => c!.once('resumed', resolve));

  set.isolate(m);
  const checkin = await c.checkin(g.handle).then(
    () => 'OK',
    (err: { code?: string }) => err.code ?? 'other',
  );
  t.not(checkin, 'OK', 'an isolated master cannot acknowledge the release');
  t.deepEqual(c.handles, [], 'the caller gave the handle back');
  set.healAll();

  const r = await settles(resumed, { timeout: 30_000, what: 'the client to reconnect and give the handle back' });
  t.deepEqual(r.released, [g.handle]);
  t.deepEqual(r.resumed, []);
  t.deepEqual(c.handles, []);
  // Every member agrees the seat is free, long before resume_window would have freed it.
  await waitFor(
    async () => {
      const all = await set.statuses();
      return all.every((s) => s && s.features[0]!.inUse === 0);
    },
    { timeout: 20_000, what: 'every member to count 0 seats' },
  );
});
