/**
 * licd pools through worker processes (`global.workers: 2`): the checkouts are counted in the workers that hold the
 * connections, and /stats.json shows their sum. (`route: feature` is refused with workers until the workers see
 * the servers' features: see docs/spec-changes.md.)
 */
import test from 'ava';
import { LineClient, startLicd } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';
import { runCluster } from './support.ts';

test('workers count the checkouts of a licd pool; the primary shows their sum', async (t) => {
  t.timeout(120_000);
  const a = await startLicd({ name: 'a', features: [{ name: 'F', count: 100 }] });
  const b = await startLicd({ name: 'b', features: [{ name: 'F', count: 100 }] });
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  const c = await runCluster(
    t,
    () => `global: { workers: 2, log_level: info }
stats: { listen: 127.0.0.1:0 }
pools:
  lic:
    protocol: licd
    check: { type: lmstat, interval: 200ms, fast_interval: 100ms, rise: 1, fall: 2 }
    servers:
      - { name: a, address: 127.0.0.1:${a.ports.license} }
      - { name: b, address: 127.0.0.1:${b.ports.license} }
frontends:
  - { name: lic, listen: 127.0.0.1:0, pool: lic }
`,
  );
  const port = await c.port('lic');
  const grant = async (): Promise<string> => {
    const x = await LineClient.connect(port);
    try {
      x.send('HELLO user=u host=h');
      x.send('CHECKOUT F');
      await x.next();
      return await x.next();
    } finally {
      x.destroy();
    }
  };
  // The workers follow the primary's checks: wait until a checkout goes through.
  await waitFor(async () => (await grant().catch(() => '')).startsWith('GRANTED'), { timeout: 30_000, what: 'a first grant through the workers' });
  for (let i = 0; i < 20; i++) t.regex(await grant(), /^GRANTED handle=[ab]\./);
  const rows = await waitFor(
    async () => {
      const j = (await c.json()) as unknown as { pools: Array<{ name: string; checkouts?: Array<{ server: string; feature: string; granted: number }> }> };
      const r = j.pools.find((p) => p.name === 'lic')!.checkouts ?? [];
      return r.reduce((n, x) => n + x.granted, 0) >= 21 ? r : undefined;
    },
    { timeout: 20_000, what: 'the grants on /stats.json' },
  );
  const total = rows.reduce((n, x) => n + x.granted, 0);
  t.true(total >= 21 && total <= 21 + 30, `${total} grants counted (20 + the first ones)`);
  t.true(rows.every((x) => x.feature === 'F' && (x.server === 'a' || x.server === 'b')));
});
