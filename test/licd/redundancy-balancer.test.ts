/**
 * A licd triad behind the balancer (SPEC 2.2 `mode: master`, 4.3), with the default check settings: clients that
 * hold seats and clients that keep checking out see zero lost sessions and zero failed checkouts across a kill of
 * the master. A client retries a checkout that met a dead or non-master server (as license clients do); a checkout
 * "fails" only when it is still not granted after 30 s.
 */
import test from 'ava';
import { publicHandle } from '../../src/licd/handles.ts';
import { LicenseClient } from '../../src/client/license-client.ts';
import { createMonitorFactory } from '../../src/health/health-monitor.ts';
import { LicdCluster } from '../helpers/licd-cluster.ts';
import { startProxy } from '../helpers/proxy.ts';
import { waitFor } from '../helpers/wait.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('through a mode: master pool with an lmstat check, a master kill costs no session and no checkout', async (t) => {
  t.timeout(90_000);
  // Default peer heartbeat (1s) and default balancer check settings.
  const set = await LicdCluster.start({ mode: 'triad', heartbeat: '1s', heartbeatTimeout: '5m', features: [{ name: 'LS-DYNA', count: 100 }, { name: 'MPPDYNA', count: 64, kind: 'tokens' }] });
  t.teardown(async () => {
    if (!t.passed) t.log(set.dump());
    await set.close();
  });
  t.is(await set.waitSynced(), 0);
  const rt = await startProxy(
    t,
    {
      pools: [
        {
          name: 'flex',
          mode: 'master',
          ports: { license: 1, tokens: 1 },
          check: { type: 'lmstat', port: 'license' },
          servers: set.members.map((m) => ({ name: m.name, ports: { license: m.ports.license, tokens: m.ports.tokens } })),
        },
      ],
      frontends: [
        { name: 'lic', pool: 'flex', port: 'license' },
        { name: 'tok', pool: 'flex', port: 'tokens' },
      ],
    },
    { monitorFactory: createMonitorFactory() },
  );
  const port = rt.port('lic');
  let running = true;
  const stats = { granted: 0, failed: 0, retries: 0, resumed: 0, lost: 0, holders: 0 };
  let killedAt = 0;
  let firstGrantAfterKill = 0;

  /** CHECKOUT, retried on a fresh connection while the set has no master to offer. */
  const checkout = async (): Promise<{ c: LicenseClient; handle: string } | null> => {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      let c: LicenseClient | undefined;
      try {
        c = await LicenseClient.connect('127.0.0.1', port, { timeout: 5_000 });
        c.on('resumed', (r: { resumed: string[]; lost: unknown[] }) => {
          stats.resumed += r.resumed.length;
          stats.lost += r.lost.length;
        });
        c.on('lost', () => stats.lost++);
        await c.hello('u', 'ws');
        const g = await c.checkout('LS-DYNA');
        stats.granted++;
        if (killedAt && !firstGrantAfterKill) firstGrantAfterKill = Date.now();
        return { c, handle: g.handle };
      } catch {
        c?.destroy();
        stats.retries++;
        await sleep(200);
      }
    }
    stats.failed++;
    return null;
  };

  // 40 long holders, then 20 clients cycling checkouts through the kill.
  const holders: Array<{ c: LicenseClient; handle: string }> = [];
  for (let i = 0; i < 40; i++) {
    const h = await checkout();
    if (h) holders.push(h);
  }
  t.is(holders.length, 40);
  const cyclers = Array.from({ length: 20 }, async () => {
    while (running) {
      const h = await checkout();
      if (!h) continue;
      await sleep(300);
      await waitFor(() => h.c.connected && !h.c.resuming, { timeout: 30_000 }).catch(() => {});
      await h.c.checkin(h.handle).catch(() => {});
      h.c.destroy();
    }
  });
  await sleep(2_000);
  killedAt = Date.now();
  await set.kill(0);
  await waitFor(() => firstGrantAfterKill > 0, { timeout: 30_000, what: 'a grant after the kill' });
  t.log(`through the balancer: first grant ${firstGrantAfterKill - killedAt}ms after the master was killed`);
  // Every holder resumed its handle on the new master.
  await waitFor(() => holders.every((h) => h.c.connected && !h.c.resuming && h.c.handles.includes(h.handle)), { timeout: 30_000, what: 'holders resumed' });
  await sleep(2_000);
  running = false;
  await Promise.all(cyclers);
  const st = (await set.status(1))!;
  t.true(st.master);
  const handles = new Set(st.features[0]!.users.map((u) => u.handle));
  for (const h of holders) t.true(handles.has(publicHandle(h.handle)), `${h.handle} held on the new master`);
  t.log(JSON.stringify(stats));
  t.is(stats.failed, 0);
  t.is(stats.lost, 0);
  t.true(stats.resumed >= 40);
  for (const h of holders) h.c.destroy();
});
