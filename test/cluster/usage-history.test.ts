/**
 * Usage history with `global.workers: 2`: the primary records (it has the checks and the stats endpoint); the
 * denials counted in the workers reach the history through the primary's merged counters; each bucket is written
 * once (one writer), in one day file. Buckets shortened to 300 ms through LICPROXY_TEST_HISTORY_BUCKET_MS.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { LineClient, startLicd } from '../helpers/licd.ts';
import { getJson } from '../helpers/stats.ts';
import { waitFor } from '../helpers/wait.ts';
import { runCluster } from './support.ts';

// This file runs in its own ava worker process: the child licproxy inherits the variable.
process.env.LICPROXY_TEST_HISTORY_BUCKET_MS = '300';

interface Usage { series: { server: string; points: { peak: number | null; denied: number; partial?: boolean }[] }[] }

test('with workers, the primary alone records: seats from its checks, denials counted in the workers, one record per bucket', async (t) => {
  t.timeout(120_000);
  const a = await startLicd({ name: 'a', features: [{ name: 'F', count: 1 }] });
  t.teardown(() => a.stop());
  const c = await runCluster(t, () => `global: { workers: 2, grace: 200ms }
stats:
  listen: 127.0.0.1:0
  history: { dir: history, keep: 1d }
pools:
  lic:
    protocol: licd
    check: { type: lmstat, interval: 50ms }
    servers: [{ name: a, address: "127.0.0.1:${a.ports.license}" }]
frontends:
  - { name: lic, listen: 127.0.0.1:0, pool: lic }
`);
  const port = await c.port('lic');
  const clients: LineClient[] = [];
  t.teardown(() => clients.forEach((x) => x.destroy()));
  let deniedAnswers = 0;
  const checkout = async (): Promise<string> => {
    const x = await LineClient.connect(port);
    clients.push(x);
    await x.request('HELLO user=u host=h');
    const answer = await x.request('CHECKOUT F');
    if (answer.startsWith('DENIED')) deniedAnswers++;
    return answer;
  };
  await waitFor(async () => (await checkout().catch(() => '')).startsWith('GRANTED'), { timeout: 30_000, what: 'a grant through the workers' });
  // The one seat is taken: the next checkouts (spread over both workers) are denied.
  for (let i = 0; i < 4; i++) t.regex(await checkout(), /^DENIED/);
  const total = await waitFor(async () => {
    const u = (await getJson<Usage>(c.stats, '/api/usage?pool=lic&feature=F')).json;
    const pts = u.series.find((s) => s.server === '*')?.points.filter((p) => !p.partial) ?? [];
    return pts.some((p) => p.peak === 1) && pts.reduce((n, p) => n + p.denied, 0) >= deniedAnswers ? pts : undefined;
  }, { timeout: 30_000, what: 'a closed bucket with the seat in use and the 4 denials' });
  t.is(total.reduce((n, p) => n + p.denied, 0), deniedAnswers, 'each denial counted once');
  const dir = join(c.dir, 'history');
  const files = readdirSync(dir);
  t.true(files.length >= 1 && files.length <= 2, files.join(' ')); // a UTC midnight may fall inside the test
  const lines = files.flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n')).filter((l) => /\tlic\t\*\tF\t/.test(l));
  const buckets = lines.map((l) => l.split('\t')[0]);
  t.is(new Set(buckets).size, buckets.length, 'one writer: each bucket written once');
  c.child.kill('SIGTERM');
  await c.exited;
});
