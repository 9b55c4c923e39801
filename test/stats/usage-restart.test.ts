/**
 * Usage history through a real `licproxy run` child and a real licd with lmstat checks, with the bucket shortened
 * to 300 ms (LICPROXY_TEST_HISTORY_BUCKET_MS) so hours pass during the test: seats held and a checkout denied
 * through the proxy are recorded per bucket; after a graceful restart, and again after a SIGKILL, the new process
 * still serves every bucket closed before (only the SIGKILLed process's open bucket is lost).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { LineClient, startLicd } from '../helpers/licd.ts';
import { spawnLicproxy, type LicproxyProcess } from '../helpers/licproxy-run.ts';
import { freePorts } from '../helpers/ports.ts';
import { getJson, request } from '../helpers/stats.ts';
import { waitFor } from '../helpers/wait.ts';

const BUCKET_MS = 300;

interface Point { at: string; peak: number | null; mean: number | null; issued: number | null; denied: number; samples: number; partial?: boolean }
interface Usage { bucketMs: number; series: { pool: string; server: string; feature: string; points: Point[] }[] }

interface Setup {
  dir: string;
  file: string;
  fePort: number;
  base: { host: string; port: number };
  start(): LicproxyProcess;
}

async function setup(t: ExecutionContext): Promise<Setup> {
  const licd = await startLicd({ name: 'a', features: [{ name: 'F', count: 2 }] });
  t.teardown(() => licd.stop());
  const [fePort, statsPort] = (await freePorts(2)) as [number, number];
  const dir = mkdtempSync(path.join(tmpdir(), 'lpx-usage-e2e-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'licproxy.yaml');
  writeFileSync(file, `global: { grace: 200ms }
stats:
  listen: 127.0.0.1:${statsPort}
  history: { dir: history, keep: 1d }
pools:
  lic:
    protocol: licd
    check: { type: lmstat, interval: 50ms }
    servers: [{ name: a, address: "127.0.0.1:${licd.ports.license}" }]
frontends: [{ name: lic, listen: "127.0.0.1:${fePort}", pool: lic }]
`);
  const base = { host: '127.0.0.1', port: statsPort };
  return {
    dir, file, fePort, base,
    start: () => spawnLicproxy(t, file, () => {}, { LICPROXY_TEST_HISTORY_BUCKET_MS: String(BUCKET_MS) }),
  };
}

async function ready(s: Setup, p: LicproxyProcess): Promise<void> {
  await waitFor(async () => {
    if (p.child.exitCode !== null) throw new Error(`licproxy exited: ${p.stderr()}`);
    const r = await request(s.base, '/ready').catch(() => null);
    return r?.status === 200;
  }, { timeout: 20_000, what: 'licproxy ready' });
}

async function usage(s: Setup): Promise<Usage> {
  const r = await getJson<Usage>(s.base, '/api/usage?pool=lic&feature=F&from=2020-01-01');
  if (r.status !== 200) throw new Error(`/api/usage: ${r.status}`);
  return r.json;
}

function closed(u: Usage, server: string): Point[] {
  return u.series.find((x) => x.server === server)?.points.filter((p) => !p.partial) ?? [];
}

async function checkout(t: ExecutionContext, port: number): Promise<{ client: LineClient; answer: string }> {
  const client = await LineClient.connect(port);
  t.teardown(() => client.destroy());
  await client.request('HELLO user=test host=ws');
  return { client, answer: await client.request('CHECKOUT F') };
}

/** Buckets on disk (the day files), as the next process will read them. */
function onDisk(s: Setup): string[] {
  const dir = path.join(s.dir, 'history');
  return readdirSync(dir).flatMap((f) => readFileSync(path.join(dir, f), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#')));
}

test('seats in use and denials are recorded per bucket and served again after a restart and after a SIGKILL', async (t) => {
  t.timeout(120_000);
  const s = await setup(t);

  // First run: both seats held, a third checkout denied.
  const first = s.start();
  await ready(s, first);
  const held = [await checkout(t, s.fePort), await checkout(t, s.fePort)];
  t.true(held.every((h) => h.answer.startsWith('GRANTED')), held.map((h) => h.answer).join('; '));
  const denied = await checkout(t, s.fePort);
  t.regex(denied.answer, /^DENIED/);
  const u1 = await waitFor(async () => {
    const u = await usage(s);
    const total = closed(u, '*');
    return total.some((p) => p.peak === 2 && p.issued === 2) && total.some((p) => p.denied >= 1) ? u : undefined;
  }, { timeout: 20_000, what: 'a closed bucket with 2 of 2 in use and the denial' });
  t.is(u1.bucketMs, BUCKET_MS);
  t.true(closed(u1, 'a').some((p) => p.peak === 2), 'per server too');
  const beforeRestart = closed(u1, '*').filter((p) => p.peak === 2).map((p) => p.at);
  const deniedBefore = closed(u1, '*').reduce((a, p) => a + p.denied, 0);
  // The stats page links the history; the page itself draws the feature.
  t.true((await request(s.base, '/stats')).body.includes('href="/stats/usage"'));
  t.regex((await request(s.base, '/stats/usage')).body, /<svg class="usage-chart"[^>]*data-feature="F"/);

  // Graceful restart: SIGTERM writes the open bucket, the next process reads everything back.
  for (const h of held) h.client.destroy();
  first.child.kill('SIGTERM');
  t.is(await first.exited, 0);
  const second = s.start();
  await ready(s, second);
  const u2 = await usage(s);
  const total2 = closed(u2, '*');
  for (const at of beforeRestart) t.true(total2.some((p) => p.at === at && p.peak === 2), `bucket ${at} served after the restart`);
  t.true(total2.reduce((a, p) => a + p.denied, 0) >= deniedBefore, 'the denials too');

  // Second run: one seat held; once a bucket with it is on disk, SIGKILL.
  const one = await checkout(t, s.fePort);
  t.regex(one.answer, /^GRANTED/);
  const secondRun = await waitFor(async () => {
    const u = await usage(s);
    const p = closed(u, '*').find((x) => x.peak === 1 && !beforeRestart.includes(x.at));
    return p && onDisk(s).some((l) => l.split('\t')[2] === '*' && l.split('\t')[4] === '1') ? p.at : undefined;
  }, { timeout: 20_000, what: 'a closed bucket of the second run on disk' });
  second.child.kill('SIGKILL');
  t.is(await second.exited, 'SIGKILL');
  const third = s.start();
  await ready(s, third);
  const total3 = closed(await usage(s), '*');
  for (const at of [...beforeRestart, secondRun]) t.true(total3.some((p) => p.at === at), `bucket ${at} served after the SIGKILL`);
  t.true(total3.some((p) => p.at === secondRun && p.peak === 1));
  third.child.kill('SIGTERM');
  await third.exited;
});

test('/api/usage: bad parameters answer 400 with one line; CSV; 404 where stats.history is not set', async (t) => {
  t.timeout(60_000);
  const s = await setup(t);
  const p = s.start();
  await ready(s, p);
  for (const q of ['from=yesterday', 'colour=red', 'from=2026-12-07&to=2026-12-01', 'format=xml']) {
    const r = await request(s.base, `/api/usage?${q}`);
    t.is(r.status, 400, q);
    t.is(r.body.trim().split('\n').length, 1, q);
  }
  await waitFor(async () => closed(await usage(s), '*').length > 0, { timeout: 20_000, what: 'a closed bucket' });
  const csv = await request(s.base, '/api/usage.csv?feature=F');
  t.is(csv.status, 200);
  t.regex(csv.headers['content-type'] as string, /^text\/csv/);
  const lines = csv.body.trim().split('\n');
  t.is(lines[0], 'time,pool,server,feature,peak,mean,issued,denied,samples,partial');
  t.true(lines.slice(1).some((l) => /^\d{4}-\d\d-\d\dT[^,]+,lic,\*,F,0,0,2,0,\d+,0$/.test(l)), lines.slice(0, 4).join('\n'));
  t.is((await request(s.base, '/api/usage?format=csv')).body.split('\n')[0], lines[0]);
  t.is((await request(s.base, '/api/usage', { method: 'POST' })).status, 405);
  p.child.kill('SIGTERM');
  await p.exited;
  // Without stats.history the routes do not exist.
  writeFileSync(s.file, readFileSync(s.file, 'utf8').replace(/ {2}history:.*\n/, ''));
  const q = s.start();
  await ready(s, q);
  t.is((await request(s.base, '/api/usage')).status, 404);
  t.is((await request(s.base, '/stats/usage')).status, 404);
  t.false((await request(s.base, '/stats')).body.includes('/stats/usage'));
});
