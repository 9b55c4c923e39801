import test from 'ava';
import { connect } from 'node:net';
import { once } from 'node:events';
import { parseProxyConfig } from '../../src/config/proxy-schema.ts';
import { createMonitorFactory } from '../../src/health/health-monitor.ts';
import { ProxyApp } from '../../src/proxy/app.ts';
import { silentLogger } from '../../src/common/logger.ts';
import { RuntimeStatsSource } from '../../src/stats/runtime-stats-source.ts';
import { PrometheusExporter } from '../../src/stats/render-prometheus.ts';
import { startLicd } from '../helpers/licd.ts';
import { freeFrontendPorts } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

// What the stats endpoint shows of a running balancer: live bytes of open connections, and every check counted.
test('stats count bytes of open connections and every health check', async (t) => {
  const licd = await startLicd();
  t.teardown(() => licd.stop());
  const config = parseProxyConfig(
    'live.yaml',
    await freeFrontendPorts(`pools:
  p:
    check: { type: tcp, interval: 50ms, fast_interval: 50ms }
    servers: [ { name: a, address: 127.0.0.1:${licd.ports.license} } ]
frontends:
  - { name: f, listen: 127.0.0.1:0, pool: p }
`),
  );
  const app = await ProxyApp.start({ config, log: silentLogger, monitorFactory: createMonitorFactory() });
  t.teardown(() => app.stop(0));
  const source = new RuntimeStatsSource(app);
  await waitFor(() => source.snapshot().pools[0]!.servers[0]!.status === 'UP', { what: 'server UP' });

  const c = connect(app.runtime.port('f'), '127.0.0.1');
  t.teardown(() => c.destroy());
  await once(c, 'connect');
  c.write('HEARTBEAT\n');
  await once(c, 'data');
  const s = source.snapshot().pools[0]!.servers[0]!;
  t.is(s.scur, 1);
  t.is(s.bytesIn, 'HEARTBEAT\n'.length, 'bytes of a connection that is still open');
  t.is(s.bytesOut, 'OK\n'.length);
  const f = source.snapshot().frontends[0]!;
  t.is(f.scur, 1);
  t.is(f.bytesIn, 'HEARTBEAT\n'.length, 'frontend bytes of a connection that is still open');
  t.is(f.bytesOut, 'OK\n'.length);
  c.write('HEARTBEAT\n');
  await once(c, 'data');
  t.is(source.snapshot().frontends[0]!.bytesIn, 2 * 'HEARTBEAT\n'.length, 'and they move while it is open');

  c.destroy();
  await waitFor(() => source.snapshot().frontends[0]!.scur === 0, { what: 'the connection ended' });
  t.is(source.snapshot().frontends[0]!.bytesIn, 2 * 'HEARTBEAT\n'.length, 'counted once when it ends');

  const counted = await waitFor(() => {
    const d = source.snapshot().pools[0]!.servers[0]!.checkDurations;
    return d && d.count >= 5 ? d : undefined;
  }, { what: 'five checks' });
  const text = await new PrometheusExporter({ defaultMetrics: false }).render(source.snapshot());
  const count = Number(/licproxy_server_check_duration_seconds_count\{[^}]*\} (\d+)/.exec(text)![1]);
  t.true(count >= counted.count, 'the histogram counts every check, not one per scrape');
  const inf = Number(/licproxy_server_check_duration_seconds_bucket\{[^}]*le="\+Inf"\} (\d+)/.exec(text)![1]);
  t.is(inf, count);
});
