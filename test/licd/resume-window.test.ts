/**
 * No stranded seat (PROTOCOL.md "Replication", "RESUME"): a CHECKIN is answered OK only once its release is on a
 * follower, so a new master never counts a seat its predecessor said was released; and a replicated session nobody
 * resumes is freed after `redundancy.resume_window`, not after heartbeat_timeout.
 */
import test from 'ava';
import { ConfigError } from '../../src/common/errors.ts';
import { parseLicdConfig } from '../../src/config/licd-config.ts';
import { LicdCluster } from '../helpers/licd-cluster.ts';
import { LineClient } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';

const GRANTED = /^GRANTED handle=(\S+) feature=LS-DYNA count=1$/;

function redundancyYaml(extra: string): string {
  return `server: { name: a, ports: { license: 0, tokens: 0, peer: 0 } }
features: [ { name: LS-DYNA, count: 2 } ]
redundancy:
  mode: triad
  peers: [ "127.0.0.1:1", "127.0.0.1:2" ]
${extra}`;
}

function configIssue(text: string): string {
  try {
    parseLicdConfig(text, 'r.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  return '';
}

test('redundancy.resume_window: default 30s, a duration of at least 100ms, separate from heartbeat_timeout', (t) => {
  t.is(parseLicdConfig(redundancyYaml(''), 'r.yaml').redundancy!.resumeWindow, 30_000);
  t.is(parseLicdConfig(redundancyYaml('  resume_window: 3s\n'), 'r.yaml').redundancy!.resumeWindow, 3_000);
  t.is(parseLicdConfig(redundancyYaml(''), 'r.yaml').server.heartbeatTimeout, 600_000);
  t.regex(configIssue(redundancyYaml('  resume_window: 5\n')), /r\.yaml:\d+:\d+ redundancy\.resume_window: a duration needs a unit/);
  t.regex(configIssue(redundancyYaml('  resume_window: soon\n')), /redundancy\.resume_window: expected a duration/);
  t.regex(configIssue(redundancyYaml('  resume_window: 10ms\n')), /redundancy\.resume_window: .*100ms/);
  t.regex(configIssue(redundancyYaml('  resume_windw: 1s\n')), /redundancy\.resume_windw/);
});

async function triad(t: import('ava').ExecutionContext, resumeWindow: string) {
  const set = await LicdCluster.start({ mode: 'triad', features: [{ name: 'LS-DYNA', count: 2 }], heartbeatTimeout: '10m', resumeWindow });
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
  return { set, open };
}

test('a session whose client is gone when its master dies is freed after resume_window (heartbeat_timeout is 10m)', async (t) => {
  t.timeout(60_000);
  const { set, open } = await triad(t, '1s');
  const c = await open(set.members[0]!.ports.license);
  t.regex(await c.request('CHECKOUT LS-DYNA'), GRANTED);
  await set.kill(0);
  c.destroy();
  const m = await set.waitMaster({ not: 0 });
  const counted = await set.status(m);
  t.is(counted!.features[0]!.inUse, 1, 'the new master holds the replicated session for its client to RESUME');
  await waitFor(async () => (await set.statuses()).every((s, i) => i === 0 || s?.features[0]!.inUse === 0), { timeout: 15_000, what: 'freed on both survivors' });
  t.pass('freed long before heartbeat_timeout');
});

test('CHECKIN is answered OK only once the release is on a follower; an acknowledged one never comes back', async (t) => {
  t.timeout(60_000);
  const { set, open } = await triad(t, '10m');
  const c = await open(set.members[0]!.ports.license);
  const handle = GRANTED.exec(await c.request('CHECKOUT LS-DYNA'))![1]!;
  // Both followers frozen: the release cannot be acknowledged; the master loses quorum and steps down.
  set.stop(1);
  set.stop(2);
  t.regex(await c.request(`CHECKIN ${handle}`, 15_000), /^ERR (NO_QUORUM|NOT_MASTER)/, 'no OK for a release no follower has');
  set.cont(1);
  set.cont(2);
  const m = await set.waitMaster();
  // Unacknowledged: the owner resumes it wherever the set serves now and checks in again (or finds it released).
  const again = await open(set.members[m]!.ports.license);
  const resumed = await again.request(`RESUME ${handle}`);
  if (resumed !== 'ERR UNKNOWN_HANDLE') {
    t.is(resumed, `GRANTED handle=${handle} feature=LS-DYNA count=1`);
    t.is(await again.request(`CHECKIN ${handle}`), 'OK');
  }
  await waitFor(async () => (await set.statuses()).every((s) => s?.features[0]!.inUse === 0), { timeout: 15_000, what: 'no seat on any member' });
  // Acknowledged: on a follower already, so killing the master now cannot bring the seat back.
  const h2 = GRANTED.exec(await again.request('CHECKOUT LS-DYNA'))![1]!;
  t.is(await again.request(`CHECKIN ${h2}`), 'OK');
  await set.kill(m);
  const next = await set.waitMaster({ not: m });
  t.is((await set.status(next))!.features[0]!.inUse, 0, 'the new master does not count a released seat');
});

test('the resume deadline travels with the session: later master changes do not restart it; a RESUME clears it everywhere', async (t) => {
  t.timeout(90_000);
  const { set, open } = await triad(t, '60s');
  const gone = await open(set.members[0]!.ports.license);
  t.regex(await gone.request('CHECKOUT LS-DYNA'), GRANTED);
  const held = await open(set.members[0]!.ports.license);
  const handle = GRANTED.exec(await held.request('CHECKOUT LS-DYNA'))![1]!;
  const resumeBy = (s: import('../../src/licd/status.ts').LicdStatus | null) => s?.features[0]!.users.map((u) => u.resumeBy ?? null) ?? [];
  await set.kill(0);
  gone.destroy();
  held.destroy();
  const m = await set.waitMaster({ not: 0 });
  const [first] = resumeBy(await set.status(m));
  t.true(typeof first === 'number', 'the new master gave the orphaned sessions a deadline');
  t.deepEqual(resumeBy(await set.status(m)), [first, first]);
  // Member a comes back, syncs and takes back: a second master change. The deadline is the one set at the first.
  await set.restart(0);
  t.is(await set.waitSynced(30_000), 0);
  t.deepEqual(resumeBy(await set.status(0)), [first, first], 'not restarted by the next master');
  // The owner of one of them resumes: no deadline for it on the master, nor (replicated) on the followers.
  const back = await open(set.members[0]!.ports.license);
  t.is(await back.request(`RESUME ${handle}`), `GRANTED handle=${handle} feature=LS-DYNA count=1`);
  await waitFor(async () => (await set.statuses()).every((s) => resumeBy(s).filter((x) => x === null).length === 1), { timeout: 10_000, what: 'the resumed session without a deadline on every member' });
  t.pass();
});
