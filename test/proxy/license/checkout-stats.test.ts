/**
 * Checkout counters of licd pools (SPEC 8.2) on /stats.json, /stats and /metrics: granted, denied, saved by a
 * retry and queue waits, per pool, server and feature, after a scripted set of checkouts whose outcomes are known.
 */
import { freeFrontendPorts } from '../../helpers/ports.ts';
import test from 'ava';
import { silentLogger } from '../../../src/common/logger.ts';
import { parseProxyConfig } from '../../../src/config/proxy-schema.ts';
import { createMonitorFactory } from '../../../src/health/health-monitor.ts';
import { ProxyApp } from '../../../src/proxy/app.ts';
import { StatsService } from '../../../src/cli/services/stats-service.ts';
import type { StatsSnapshot } from '../../../src/stats/snapshot.ts';
import { LineClient } from '../../helpers/licd.ts';
import { getJson, request } from '../../helpers/stats.ts';
import { waitFor } from '../../helpers/wait.ts';
import { CHECK, licds, serverLines } from './support.ts';

test('granted / denied / retried_saved per server and feature on /stats.json, /stats and /metrics', async (t) => {
  const [a, b] = await licds(t, [
    { name: 'a', features: [{ name: 'F', count: 1 }, { name: 'G', count: 5 }] },
    { name: 'b', features: [{ name: 'F', count: 1 }] },
  ]);
  const config = parseProxyConfig(
    'stats-test.yaml',
    await freeFrontendPorts(`stats: { listen: 127.0.0.1:0 }
pools:
  lic:
    route: feature
    retry_denied: true
    balance: first
    check: ${CHECK}
    servers:
${serverLines([a!, b!])}
  plain:
    servers:
      - { name: a, address: 127.0.0.1:${a!.licd.ports.license} }
frontends:
  - { name: lic, listen: 127.0.0.1:0, pool: lic }
  - { name: plain, listen: 127.0.0.1:0, pool: plain }
`),
  );
  const stats = new StatsService({ log: silentLogger });
  const app = await ProxyApp.start({ config, log: silentLogger, monitorFactory: createMonitorFactory(), services: [stats] });
  t.teardown(() => app.stop(0));
  await waitFor(() => app.runtime.pool('lic')!.servers.every((s) => s.lastCheck?.features !== undefined), { what: 'checked' });
  const port = app.runtime.port('lic');
  const ask = async (line: string) => {
    const c = await LineClient.connect(port);
    t.teardown(() => c.destroy());
    return c.request(line);
  };
  t.regex(await ask('CHECKOUT F'), /^GRANTED handle=a\./);
  t.regex(await ask('CHECKOUT F'), /^GRANTED handle=b\./, 'a full: saved by b');
  t.regex(await ask('CHECKOUT F'), /^DENIED/);
  t.regex(await ask('CHECKOUT G'), /^GRANTED handle=a\./);
  t.regex(await ask('CHECKOUT NOPE'), /UNKNOWN_FEATURE/);

  const base = stats.address!;
  const snap = await waitFor(async () => {
    const s = (await getJson<StatsSnapshot>(base, '/stats.json')).json;
    const rows = s.pools.find((p) => p.name === 'lic')!.checkouts ?? [];
    return rows.reduce((n, r) => n + r.granted + r.denied, 0) === 5 ? s : undefined;
  }, { what: 'five outcomes on /stats.json' });
  const rows = snap.pools.find((p) => p.name === 'lic')!.checkouts!;
  const row = (server: string, feature: string) => rows.find((r) => r.server === server && r.feature === feature);
  t.like(row('-', 'NOPE'), { granted: 0, denied: 1 }, 'answered by the proxy itself');
  t.like(row('a', 'G'), { granted: 1, denied: 0 });
  t.like(row('a', 'F'), { granted: 1, retriedSaved: 0 });
  // The third F: a denies, then b denies too (or is skipped when its check already says full): counted once.
  t.is(rows.filter((r) => r.feature === 'F').reduce((n, r) => n + r.denied, 0), 1);
  const bF = rows.find((r) => r.server === 'b' && r.feature === 'F')!;
  t.is(bF.granted, 1);
  t.is(bF.retriedSaved, 1);
  t.is(rows.reduce((n, r) => n + r.denied, 0), 2);
  t.is(snap.pools.find((p) => p.name === 'plain')!.checkouts, undefined, 'a tcp pool has no checkout counters');

  const metrics = (await request(base, '/metrics')).body;
  t.regex(metrics, /licproxy_license_checkouts_total\{pool="lic",server="b",feature="F",result="retried_saved"\} 1\n/);
  t.regex(metrics, /licproxy_license_checkouts_total\{pool="lic",server="a",feature="G",result="granted"\} 1\n/);
  t.notRegex(metrics, /pool="plain",server="a",feature/);
  const html = (await request(base, '/stats')).body;
  t.regex(html, /<th>Saved by retry<\/th>/);
  t.regex(html, /<tr><td>b<\/td><td>F<\/td><td class="n">1<\/td><td class="n">\d<\/td><td class="n">1<\/td>/);
});
