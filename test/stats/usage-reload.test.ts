/**
 * `stats.history` follows reloads: added, the routes appear and a recorder runs; its dir moved, the old recorder
 * writes its open bucket and the new one takes over; removed, the routes answer 404 again. The stats listener
 * stays the same throughout.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { StatsService } from '../../src/cli/services/stats-service.ts';
import { silentLogger } from '../../src/common/logger.ts';
import { loadProxyConfig } from '../../src/config/proxy-schema.ts';
import { createMonitorFactory } from '../../src/health/health-monitor.ts';
import { ProxyApp } from '../../src/proxy/app.ts';
import { startLicd } from '../helpers/licd.ts';
import { freePorts } from '../helpers/ports.ts';
import { request } from '../helpers/stats.ts';
import { waitFor } from '../helpers/wait.ts';

test('stats.history added, moved and removed by reloads', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lpx-usage-reload-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const licd = await startLicd({ name: 'a', features: [{ name: 'F', count: 5 }] });
  t.teardown(() => licd.stop());
  const [fe] = (await freePorts(1)) as [number];
  const file = join(dir, 'licproxy.yaml');
  const write = (history: string): void => writeFileSync(file, `stats:
  listen: 127.0.0.1:0
${history}pools:
  p:
    check: { type: lmstat, interval: 50ms }
    servers: [{ name: a, address: "127.0.0.1:${licd.ports.license}" }]
frontends: [{ name: f, listen: "127.0.0.1:${fe}", pool: p }]
`);
  write('');
  const stats = new StatsService({ log: silentLogger, historyBucketMs: 200 });
  const app = await ProxyApp.start({ config: loadProxyConfig(file), log: silentLogger, monitorFactory: createMonitorFactory(), services: [stats] });
  t.teardown(() => app.stop(0));
  const base = stats.address!;
  t.is((await request(base, '/api/usage')).status, 404);
  t.is(stats.history, null);

  write('  history: { dir: one }\n');
  t.true((await app.reload()).ok);
  t.deepEqual(stats.address, base, 'the same listener');
  t.is((await request(base, '/api/usage')).status, 200);
  const first = stats.history!;
  await waitFor(() => existsSync(join(dir, 'one')) && readdirSync(join(dir, 'one')).length > 0, { timeout: 15_000, what: 'a bucket written in one/' });

  write('  history: { dir: two }\n');
  t.true((await app.reload()).ok);
  t.not(stats.history, first);
  await waitFor(() => existsSync(join(dir, 'two')) && readdirSync(join(dir, 'two')).length > 0, { timeout: 15_000, what: 'a bucket written in two/' });
  t.true((await request(base, '/stats')).body.includes('/stats/usage'));

  write('');
  t.true((await app.reload()).ok);
  t.is(stats.history, null);
  t.is((await request(base, '/api/usage')).status, 404);
  t.false((await request(base, '/stats')).body.includes('/stats/usage'));
});
