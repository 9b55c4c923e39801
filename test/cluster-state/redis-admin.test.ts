/**
 * SPEC 9: admin state, event history and peers shared by two licproxy instances through a real redis-server; an
 * instance with an older configuration, and keys of another cluster, are ignored where they do not apply.
 */
import test from 'ava';
import type { Socket } from 'node:net';
import { startNamed } from '../helpers/backend.ts';
import type { ConfigSpec } from '../helpers/proxy.ts';
import { adminPost, getJson, request } from '../helpers/stats.ts';
import { waitFor } from '../helpers/wait.ts';
import type { ClusterStatus } from '../../src/proxy/cluster-state/cluster-view.ts';
import { REDIS_SERVER, SKIP_REASON, TOKEN, firstLine, startInstance, startRedis } from './redis-support.ts';

const maybe = REDIS_SERVER === null ? test.skip : test.serial;
if (REDIS_SERVER === null) {
  test('cluster-state admin', (t) => {
    t.log(SKIP_REASON);
    t.pass();
  });
}

async function spec(t: import('ava').ExecutionContext, names = ['s1', 's2']): Promise<(only?: string[]) => ConfigSpec> {
  const ports: Record<string, number> = {};
  for (const n of names) ports[n] = (await startNamed(t, n)).port;
  return (only = names) => ({
    pools: [{ name: 'lic', affinity: { by: 'source', ttl: 3_600_000, maxBindings: 1000 }, servers: only.map((n) => ({ name: n, port: ports[n]! })) }],
  });
}

maybe('drain, maint and weight set on one instance are in force on the other; events and peers are shared', async (t) => {
  const redis = await startRedis(t);
  const cfg = await spec(t);
  const a = await startInstance(t, cfg(), { redisUrl: redis.url, instance: 'lb1' });
  const b = await startInstance(t, cfg(), { redisUrl: redis.url, instance: 'lb2' });
  const post = (body: unknown, server = 's1') => adminPost(a.stats, `/api/pools/lic/servers/${server}`, body, TOKEN);

  t.is((await post({ state: 'drain' })).status, 200);
  await waitFor(() => b.app.runtime.server('lic', 's1')!.adminState === 'drain', { what: 'drain on lb2' });
  t.is((await post({ weight: 7 }, 's2')).status, 200);
  await waitFor(() => b.app.runtime.server('lic', 's2')!.weight === 7, { what: 'weight 7 on lb2' });
  // Set on B, seen on A: either instance's API writes.
  t.is((await adminPost(b.stats, '/api/pools/lic/servers/s1', { state: 'maint' }, TOKEN)).status, 200);
  await waitFor(() => a.app.runtime.server('lic', 's1')!.adminState === 'maint', { what: 'maint on lb1' });
  // New clients on B now avoid s1 (maint) as A does.
  const keep: Socket[] = [];
  t.teardown(() => keep.forEach((s) => s.destroy()));
  t.is(await firstLine(b.app.runtime.port('lic'), '127.4.0.1', keep), 's2');

  // One history for the cluster: A's /api/events lists B's admin change, with B's name.
  const ev = await waitFor(async () => {
    const { json } = await getJson<{ events: Array<{ instance?: string; type: string; to?: string }> }>(a.stats, '/api/events');
    return json.events.some((e) => e.instance === 'lb2' && e.to === 'maint') ? json.events : null;
  }, { what: "lb2's event in lb1's history" });
  t.true(ev.some((e) => e.instance === 'lb1' && e.to === 'drain'));

  // Peers: each lists the other with its last heartbeat; /metrics and /stats say so too.
  const st = await waitFor(async () => {
    const { json } = await getJson<{ cluster: ClusterStatus }>(a.stats, '/stats.json');
    return json.cluster.peers.some((p) => p.instance === 'lb2' && p.alive) ? json.cluster : null;
  }, { what: 'lb2 as a peer of lb1' });
  t.is(st.instance, 'lb1');
  t.true(st.redis.connected);
  const lb2 = st.peers.find((p) => p.instance === 'lb2')!;
  t.true(lb2.lastHeartbeatAgoMs !== null && lb2.lastHeartbeatAgoMs >= 0);
  t.is(typeof lb2.configHash, 'string');
  const metrics = (await request(a.stats, '/metrics')).body;
  t.regex(metrics, /licproxy_cluster_redis_up\{cluster="lic-lb",instance="lb1"\} 1/);
  t.regex(metrics, /licproxy_cluster_peer_up\{cluster="lic-lb",instance="lb1",peer="lb2"\} 1/);
  t.regex(metrics, /licproxy_cluster_redis_errors_total\{cluster="lic-lb",instance="lb1"\} 0/);
  const html = (await request(a.stats, '/stats')).body;
  t.regex(html, /instance <b>lb1<\/b>/);
  t.regex(html, /lb2 <span class="ok">heartbeat/);
});

maybe('an instance restarting with an older configuration ignores (and logs) admin state for servers it lacks', async (t) => {
  const redis = await startRedis(t);
  const cfg = await spec(t, ['s1', 's2', 's3']);
  const a = await startInstance(t, cfg(), { redisUrl: redis.url, instance: 'lb1' });
  t.is((await adminPost(a.stats, '/api/pools/lic/servers/s3', { state: 'maint' }, TOKEN)).status, 200);
  t.is((await adminPost(a.stats, '/api/pools/lic/servers/s1', { state: 'drain' }, TOKEN)).status, 200);
  await waitFor(async () => (await redis.client.hlen('licproxy:lic-lb:admin')) === 2, { what: 'admin hash' });
  // Garbage written by someone else into the hash: ignored, logged.
  await redis.client.hset('licproxy:lic-lb:admin', 'state:lic/s2', 'bogus\u001b[31m', 'nonsense', '1');
  const old = await startInstance(t, cfg(['s1', 's2']), { redisUrl: redis.url, instance: 'lb2' });
  await waitFor(() => old.app.runtime.server('lic', 's1')!.adminState === 'drain', { what: 'drain on the older instance' });
  t.is(old.app.runtime.server('lic', 's2')!.adminState, 'ready');
  const warned = await waitFor(() => {
    const w = old.lines().filter((l) => typeof l.msg === 'string' && (l.msg as string).includes('ignored'));
    return w.length >= 3 ? w : null;
  }, { what: 'ignored-entry log lines' });
  t.true(warned.some((l) => (l.msg as string).includes('state:lic/s3') && (l.msg as string).includes('no server s3')));
  t.true(warned.every((l) => !(l.msg as string).includes('\u001b')), 'control bytes are not echoed');
  // Logged once each, not on every re-read.
  t.is((await adminPost(a.stats, '/api/pools/lic/servers/s1', { state: 'ready' }, TOKEN)).status, 200);
  await waitFor(() => old.app.runtime.server('lic', 's1')!.adminState === 'ready', { what: 'ready on the older instance' });
  t.is(old.lines().filter((l) => typeof l.msg === 'string' && (l.msg as string).includes('state:lic/s3')).length, 1);
});

maybe('keys of another cluster name in the same Redis are ignored', async (t) => {
  const redis = await startRedis(t);
  const cfg = await spec(t);
  await redis.client.set('licproxy:other:aff:lic:127.5.0.1', 's2');
  await redis.client.hset('licproxy:other:admin', 'state:lic/s1', 'maint');
  await redis.client.rpush('licproxy:other:events', JSON.stringify({ time: 1, kind: 'admin', reason: 'other cluster', instance: 'x' }));
  const a = await startInstance(t, cfg(), { redisUrl: redis.url, instance: 'lb1' });
  const keep: Socket[] = [];
  t.teardown(() => keep.forEach((s) => s.destroy()));
  t.is(a.app.runtime.server('lic', 's1')!.adminState, 'ready');
  // Round robin's first pick here is s1; the other cluster's binding to s2 does not apply.
  t.is(await firstLine(a.app.runtime.port('lic'), '127.5.0.1', keep), 's1');
  t.is(await redis.client.get('licproxy:lic-lb:aff:lic:127.5.0.1'), 's1');
  t.is(await redis.client.get('licproxy:other:aff:lic:127.5.0.1'), 's2');
  const { json } = await getJson<{ events: Array<{ reason: string }> }>(a.stats, '/api/events');
  t.false(json.events.some((e) => e.reason === 'other cluster'));
});

maybe('clocks that differ: peer ages come from Redis TTLs, the history keeps Redis order', async (t) => {
  const redis = await startRedis(t);
  const cfg = await spec(t);
  // A peer whose clock runs an hour ahead: its events carry its time, its heartbeat only a TTL.
  const ahead = Date.now() + 3_600_000;
  await redis.client.rpush('licproxy:lic-lb:events', JSON.stringify({ time: ahead, kind: 'admin', reason: 'from the future', instance: 'lb9' }));
  await redis.client.sadd('licproxy:lic-lb:peers', 'lb9');
  await redis.client.set('licproxy:lic-lb:peer:lb9', JSON.stringify({ instance: 'lb9', version: '0', configHash: 'abc', time: ahead }), 'PX', 60_000);
  const a = await startInstance(t, cfg(), { redisUrl: redis.url, instance: 'lb1' });
  t.is((await adminPost(a.stats, '/api/pools/lic/servers/s1', { state: 'drain' }, TOKEN)).status, 200);
  const ev = await waitFor(async () => {
    const { json } = await getJson<{ events: Array<{ reason: string; instance?: string }> }>(a.stats, '/api/events');
    return json.events.some((e) => e.instance === 'lb1' && e.reason === 'admin API') ? json.events : null;
  }, { what: "lb1's own event" });
  const future = ev.findIndex((e) => e.reason === 'from the future');
  const mine = ev.findIndex((e) => e.instance === 'lb1' && e.reason === 'admin API');
  t.true(future >= 0 && future < mine, 'the event appended first stays first, whatever its time says');
  const peer = await waitFor(() => a.shared.status().peers.find((p) => p.instance === 'lb9'), { what: 'peer lb9' });
  t.true(peer.alive);
  // Its key has up to 60 s left: the age read from the TTL is never negative, however far its clock is ahead.
  t.true(peer.lastHeartbeatAgoMs !== null && peer.lastHeartbeatAgoMs >= 0);
});
