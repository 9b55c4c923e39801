/**
 * A member learns which of its configured peer addresses is which member only by dialing it: behind a NAT or a
 * relay (here the set's test relays), the address a peer dialed us from, and the one it names, are not ours for it.
 * Such a dial to a member already linked is answered `known` (PROTOCOL.md "Peer protocol") and changes nothing.
 * Before this, the member learned the address only once it had lost another member: the first failover redialed the
 * survivor's link and replaced it, so the new master lost its synced follower and answered `ERR NO_QUORUM` until
 * the follower had re-synced over the new link.
 */
import test from 'ava';
import { LicdCluster } from '../helpers/licd-cluster.ts';
import { LineClient } from '../helpers/licd.ts';

test('a failover keeps the survivors link: the new master grants and frees without a gap while redials are answered known', async (t) => {
  t.timeout(120_000);
  const set = await LicdCluster.start({ mode: 'triad', features: [{ name: 'F', count: 10 }], heartbeat: '1s', logLevel: 'debug' });
  t.teardown(async () => {
    if (!t.passed) t.log(set.dump());
    await set.close();
  });
  t.is(await set.waitSynced(30_000), 0);
  const from = set.members.map((m) => m.output.length);
  const killedAt = Date.now();
  await set.kill(0);
  const m = await set.waitMaster({ not: 0 });
  const c = await LineClient.connect(set.members[m]!.ports.license);
  t.teardown(() => c.destroy());
  t.regex(await c.request('HELLO user=u host=h'), /^OK server=/);
  // Every member dials each address it has not learned once a heartbeat; 4 heartbeats cover the survivors' redials.
  let cycles = 0;
  const answers: string[] = [];
  while (Date.now() - killedAt < 4_000 && cycles < 20_000) {
    cycles++;
    const granted = await c.request('CHECKOUT F');
    const h = /^GRANTED handle=(\S+) /.exec(granted)?.[1];
    if (h === undefined) {
      answers.push(`CHECKOUT -> ${granted}`);
      continue;
    }
    const freed = await c.request(`CHECKIN ${h}`);
    if (freed !== 'OK') answers.push(`CHECKIN -> ${freed}`);
  }
  t.deepEqual(answers, [], `${cycles} cycles on ${set.members[m]!.name}`);
  t.log(`${cycles} checkout/checkin cycles on the new master`);
  const replaced = set.members.filter((x, i) => i !== 0 && x.output.slice(from[i]).includes('replaced by a new link'));
  t.deepEqual(replaced.map((x) => x.name), [], 'no survivor link replaced');
  t.is((await set.status(m))!.features[0]!.inUse, 0);
});
