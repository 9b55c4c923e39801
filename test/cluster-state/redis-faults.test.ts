/**
 * SPEC 9, Redis at fault: killed mid-traffic, stopped (SIGSTOP: connected but silent), a wrong password. Forwarding
 * goes on with local state (connections complete), errors are counted, /ready stays 200 with a warning, the state
 * change is logged once, and what was bound alone is written back when Redis returns (first writer wins).
 */
import test from 'ava';
import type { Socket } from 'node:net';
import { request } from '../helpers/stats.ts';
import { waitFor } from '../helpers/wait.ts';
import { REDIS_SERVER, SKIP_REASON, firstLine, startInstance, startRedis, twoPortSpec, type Instance } from './redis-support.ts';

const maybe = REDIS_SERVER === null ? test.skip : test.serial;
if (REDIS_SERVER === null) {
  test('cluster-state faults', (t) => {
    t.log(SKIP_REASON);
    t.pass();
  });
}

const unreachableLines = (i: Instance): number => i.lines().filter((l) => typeof l.msg === 'string' && (l.msg as string).includes('unreachable')).length;
const server = (line: string): string => line.split('/')[0]!;

maybe('Redis killed mid-traffic: forwarding goes on, errors counted, /ready 200 with a warning, re-sync after restart', async (t) => {
  const redis = await startRedis(t);
  const spec = await twoPortSpec(t);
  const a = await startInstance(t, spec(false), { redisUrl: redis.url, instance: 'lb1', timeout: 2_000 });
  const b = await startInstance(t, spec(true), { redisUrl: redis.url, instance: 'lb2', timeout: 2_000 });
  const keep: Socket[] = [];
  t.teardown(() => keep.forEach((s) => s.destroy()));
  const lic = a.app.runtime.port('license');
  const tok = b.app.runtime.port('tokens');

  // Traffic before: shared bindings.
  for (let i = 1; i <= 20; i++) t.is(server(await firstLine(lic, `127.6.0.${i}`, keep)), server(await firstLine(tok, `127.6.0.${i}`, keep)));

  await redis.kill('SIGKILL');
  await waitFor(() => !a.shared.status().redis.connected && !b.shared.status().redis.connected, { what: 'both instances see Redis down' });

  // Traffic without Redis: every connection completes. New clients' license port (on A) and token port (on B) are
  // decided alone, one after the other: the two round robins, listed in opposite orders, disagree.
  const alone = 20;
  const split: string[] = [];
  for (let i = 1; i <= alone; i++) {
    const l = await firstLine(lic, `127.7.0.${i}`, keep);
    const k = await firstLine(tok, `127.7.0.${i}`, keep);
    if (server(l) !== server(k)) split.push(`127.7.0.${i}`);
  }
  t.true(split.length > 0, 'without Redis the instances decide alone (this test would not see a re-sync otherwise)');
  // Clients bound before the outage keep their server on this instance.
  t.is(server(await firstLine(lic, '127.6.0.1', keep)), server(await firstLine(tok, '127.6.0.1', keep)));
  t.true(a.shared.status().redis.errors > 0);
  t.true(a.shared.status().bindings.pendingWriteBack >= alone);
  const ready = await request(a.stats, '/ready');
  t.is(ready.status, 200);
  t.regex(ready.body, /warning: cluster lic-lb: Redis unreachable/);
  t.regex((await request(a.stats, '/metrics')).body, /licproxy_cluster_redis_errors_total\{cluster="lic-lb",instance="lb1"\} [1-9]/);
  t.is(unreachableLines(a), 1, 'one log line for the state change, none per connection');

  await redis.restart();
  await waitFor(() => a.shared.status().redis.connected && b.shared.status().redis.connected, { timeout: 10_000, what: 'both instances back on Redis' });
  await waitFor(() => a.shared.status().bindings.pendingWriteBack === 0 && b.shared.status().bindings.pendingWriteBack === 0, { what: 'write-back done' });
  // Each client that was split has exactly one winner; the loser logged the conflict and adopted it.
  const conflicts = a.shared.status().bindings.conflicts + b.shared.status().bindings.conflicts;
  t.true(conflicts >= split.length, `${conflicts} conflicts for ${split.length} split clients`);
  t.true([...a.lines(), ...b.lines()].some((l) => typeof l.msg === 'string' && (l.msg as string).includes('binding conflict')));
  // From now on, every client's two ports meet again, including the ones split during the outage.
  for (let i = 1; i <= alone; i++) {
    const [l, k] = await Promise.all([firstLine(lic, `127.7.0.${i}`, keep), firstLine(tok, `127.7.0.${i}`, keep)]);
    t.is(server(l), server(k), `127.7.0.${i} after the re-sync`);
  }
  t.is((await redis.client.keys('licproxy:lic-lb:aff:lic:127.6.*')).length, 20, 'bindings from before the restart were written back');
  t.is(unreachableLines(a), 1);
  t.notRegex((await request(a.stats, '/ready')).body, /warning/);
});

maybe('Redis stopped (SIGSTOP): forwarding does not wait on it, connections complete, state says slow', async (t) => {
  const redis = await startRedis(t);
  const spec = await twoPortSpec(t);
  const a = await startInstance(t, spec(false), { redisUrl: redis.url, instance: 'lb1', timeout: 50 });
  const keep: Socket[] = [];
  t.teardown(() => keep.forEach((s) => s.destroy()));
  const lic = a.app.runtime.port('license');
  const before = await firstLine(lic, '127.8.0.1', keep);
  await redis.kill('SIGSTOP');
  t.teardown(() => void redis.kill('SIGCONT'));
  // 50 clients at once while Redis is silent: every one is placed (on local state) and served.
  const lines = await Promise.all(Array.from({ length: 50 }, (_, i) => firstLine(lic, `127.8.1.${i + 1}`, keep)));
  t.is(lines.filter((l) => /^s[12]\/license$/.test(l)).length, 50);
  t.true(a.shared.status().redis.errors >= 50);
  // A few unanswered asks in a row: the link is slow, said once in the log and on /ready (still 200).
  t.is(a.shared.status().redis.state, 'slow');
  const ready = await request(a.stats, '/ready');
  t.is(ready.status, 200);
  t.regex(ready.body, /warning: cluster lic-lb: Redis not answering in time/);
  t.is(a.lines().filter((l) => typeof l.msg === 'string' && (l.msg as string).includes('not answering in time')).length, 1);
  // While slow, new clients are placed on local state without asking, and a client bound before keeps its server.
  const more = await Promise.all(Array.from({ length: 20 }, (_, i) => firstLine(lic, `127.8.2.${i + 1}`, keep)));
  t.is(more.filter((l) => /^s[12]\/license$/.test(l)).length, 20);
  t.is(await firstLine(lic, '127.8.0.1', keep), before);
  await redis.kill('SIGCONT');
  await waitFor(() => a.shared.status().redis.state === 'up', { timeout: 10_000, what: 'Redis answering again' });
  // What was decided meanwhile is in Redis, bound where this instance sent each client.
  await waitFor(async () => (await redis.client.keys('licproxy:lic-lb:aff:lic:127.8.[12].*')).length === 70, { timeout: 10_000, what: 'write-back' });
  for (let i = 1; i <= 50; i += 7) t.is(`${await redis.client.get(`licproxy:lic-lb:aff:lic:127.8.1.${i}`)}/license`, lines[i - 1]);
  for (let i = 1; i <= 20; i += 5) t.is(`${await redis.client.get(`licproxy:lic-lb:aff:lic:127.8.2.${i}`)}/license`, more[i - 1]);
  t.notRegex((await request(a.stats, '/ready')).body, /warning/);
});

maybe('a wrong Redis password: one clear log line, the instance runs on local state', async (t) => {
  const redis = await startRedis(t, { password: 'right-password' });
  const spec = await twoPortSpec(t);
  const wrong = redis.url.replace('right-password', 'wrong-password');
  const a = await startInstance(t, spec(false), { redisUrl: wrong, instance: 'lb1' });
  const keep: Socket[] = [];
  t.teardown(() => keep.forEach((s) => s.destroy()));
  const line = await waitFor(() => a.lines().find((l) => typeof l.msg === 'string' && (l.msg as string).includes('unreachable')), { what: 'the unreachable line' });
  t.regex(line.msg as string, /WRONGPASS|NOAUTH|invalid (username-)?password/i);
  t.false((line.msg as string).includes('wrong-password'), 'the password is not logged');
  t.regex(await firstLine(a.app.runtime.port('license'), '127.9.0.1', keep), /^s[12]\/license$/);
  const ready = await request(a.stats, '/ready');
  t.is(ready.status, 200);
  t.regex(ready.body, /warning: .*Redis unreachable/);
  t.is(unreachableLines(a), 1);
});
