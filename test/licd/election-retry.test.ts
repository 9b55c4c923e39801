/**
 * A triad candidate refused because a voter still followed the old master asks again as soon as that voter lets go
 * of it (the voter tells its peers at once; PROTOCOL.md "Terms, votes and who serves"), not a heartbeat or two
 * later. A SIGSTOPped master is dropped by its peers one after the other (each counts 3 silent heartbeats on its
 * own clock): the first to drop it is refused by the second, and before this every such failover waited out the
 * back-off. Here the refusal is made certain by cutting the a-b link first; the heartbeat is 3 s, so the back-off
 * (3-6 s) cannot explain a master within 2 s of a's death.
 */
import test from 'ava';
import { LicdCluster } from '../helpers/licd-cluster.ts';
import { waitFor } from '../helpers/wait.ts';

const refusals = (out: string) => out.split('\n').filter((l) => l.includes('election failed: votes refused')).length;

test('a candidate refused while the voter followed the old master is elected as soon as the voter lets go of it', async (t) => {
  t.timeout(120_000);
  const set = await LicdCluster.start({ mode: 'triad', features: [{ name: 'F', count: 10 }], heartbeat: '3s', logLevel: 'info' });
  t.teardown(async () => {
    if (!t.passed) t.log(set.dump());
    await set.close();
  });
  t.is(await set.waitSynced(30_000), 0);
  const b = set.members[1]!;
  // b loses a (the link is blackholed), c keeps it: b asks for votes and c refuses (a still serves, to c's eyes).
  set.cut(0, 1);
  await waitFor(() => refusals(b.output) >= 1, { timeout: 40_000, interval: 20, what: 'b refused by c' });
  // Right after a refusal: b's back-off has 3 s or more to run.
  const seen = refusals(b.output);
  await waitFor(() => refusals(b.output) > seen, { timeout: 40_000, interval: 10, what: 'b refused again' });
  await set.kill(0);
  // c's link to a closes at once (a died); c stops following and says so; b asks again and c votes for it.
  const m = await set.waitMaster({ timeout: 2_000 }).catch(() => -1);
  t.is(m, 1, 'b serves before its back-off could have run out');
});
