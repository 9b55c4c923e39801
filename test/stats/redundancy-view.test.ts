/**
 * The redundancy view (SPEC 10) in front of a real licd triad: /stats.json `redundancySets` and the /stats section
 * show each member's role, connected and synchronized state; a killed member shows as missing, with the time it
 * went missing, and the set as degraded. A member cut off from its peers (the proxy still reaches it) is missing
 * too: the view reads what the members report of each other, not only the proxy's checks.
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/common/logger.ts';
import { parseProxyConfig } from '../../src/config/proxy-schema.ts';
import { createMonitorFactory } from '../../src/health/health-monitor.ts';
import { ProxyApp } from '../../src/proxy/app.ts';
import { StatsService } from '../../src/cli/services/stats-service.ts';
import type { RedundancySet } from '../../src/stats/redundancy-view.ts';
import { LicdCluster } from '../helpers/licd-cluster.ts';
import { freeFrontendPorts } from '../helpers/ports.ts';
import { getJson, request } from '../helpers/stats.ts';
import { waitFor } from '../helpers/wait.ts';

async function view(base: { host: string; port: number }): Promise<RedundancySet | undefined> {
  const r = await getJson<{ redundancySets?: RedundancySet[] }>(base, '/stats.json');
  return r.json.redundancySets?.find((s) => s.pool === 'triad');
}

/** A real licd triad, and a balancer with a stats listener in front of it in a `mode: master` pool. */
async function triadBehindProxy(t: ExecutionContext): Promise<{ set: LicdCluster; base: { host: string; port: number } }> {
  const set = await LicdCluster.start({ mode: 'triad', heartbeatTimeout: '5m' });
  t.teardown(async () => {
    if (!t.passed) t.log(set.dump());
    await set.close();
  });
  t.is(await set.waitSynced(), 0);
  const dir = mkdtempSync(join(tmpdir(), 'lpx-redundancy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const [a, b, c] = set.members;
  const config = parseProxyConfig(join(dir, 'licproxy.yaml'), await freeFrontendPorts(`stats:
  listen: 127.0.0.1:0
pools:
  triad:
    mode: master
    check: { type: lmstat, interval: 300ms, fast_interval: 200ms, down_interval: 500ms, timeout: 2s, rise: 1, fall: 2 }
    servers:
      - { name: ${a!.name}, address: 127.0.0.1:${a!.ports.license} }
      - { name: ${b!.name}, address: 127.0.0.1:${b!.ports.license} }
      - { name: ${c!.name}, address: 127.0.0.1:${c!.ports.license} }
frontends:
  - { name: triad, listen: 127.0.0.1:0, pool: triad }
`));
  const stats = new StatsService({ log: silentLogger });
  const app = await ProxyApp.start({ config, log: silentLogger, monitorFactory: createMonitorFactory(), services: [stats] });
  t.teardown(() => app.stop(0));
  const base = stats.address!;
  return { set, base };
}

test('triad: roles, connected and synced per member; a killed member shows missing since it died', async (t) => {
  t.timeout(90_000);
  const { set, base } = await triadBehindProxy(t);

  const whole = await waitFor(async () => {
    const v = await view(base);
    return v?.state === 'complete' && v.members.every((m) => m.answering) ? v : undefined;
  }, { timeout: 20_000, what: 'the whole triad in the view' });
  t.is(whole.mode, 'triad');
  t.is(whole.master, 'a');
  t.deepEqual(whole.missing, []);
  t.deepEqual(whole.members.map((m) => [m.name, m.server, m.role, m.connected, m.synced, m.missingSince]), [
    ['a', 'a', 'master', true, true, null],
    ['b', 'b', 'follower', true, true, null],
    ['c', 'c', 'follower', true, true, null],
  ]);
  t.is(whole.members[1]!.state, 'paired and synced');

  const killedAt = Date.now();
  await set.kill(2);
  // Its peers say it is missing at once; the balancer's own check notices a moment later that it stopped answering.
  const degraded = await waitFor(async () => {
    const v = await view(base);
    return v?.missing.includes('c') && !v.members.find((m) => m.name === 'c')!.answering ? v : undefined;
  }, { timeout: 20_000, what: 'c missing in the view' });
  t.is(degraded.state, 'degraded');
  t.deepEqual(degraded.missing, ['c']);
  const cv = degraded.members.find((m) => m.name === 'c')!;
  t.false(cv.connected);
  t.false(cv.answering);
  t.not(cv.missingSince, null);
  t.true(cv.missingSince! >= killedAt - 1_000, 'missing since about when it was killed');
  t.true(degraded.members.find((m) => m.name === 'a')!.connected);
  t.true(degraded.members.find((m) => m.name === 'b')!.connected);

  const page = (await request(base, '/stats')).body;
  t.regex(page, /<h2 id="redundancy">Redundancy<\/h2>/);
  t.regex(page, /missing: <b>c<\/b>/);
  t.regex(page, /<tr class="down"><td class="name">c<\/td>.*<b>MISSING<\/b>/);
});

test('triad: a member cut off from its peers is missing though the proxy reaches it', async (t) => {
  t.timeout(90_000);
  const { set, base } = await triadBehindProxy(t);
  await waitFor(async () => (await view(base))?.state === 'complete', { timeout: 20_000, what: 'the whole triad in the view' });

  set.isolate(2);
  let last: RedundancySet | undefined;
  t.teardown(() => {
    if (!t.passed) t.log('last view:', JSON.stringify(last));
  });
  const v = await waitFor(async () => {
    const x = (last = await view(base));
    return x?.missing.includes('c') && x.members.find((m) => m.name === 'c')!.answering ? x : undefined;
  }, { timeout: 45_000, what: 'c missing while it still answers' });
  t.deepEqual(v.missing, ['c']);
  t.is(v.master, 'a');
  t.is(v.members.find((m) => m.name === 'a')!.role, 'master');
});
