/**
 * The ecosystem files: contrib/prometheus/licproxy.rules.yml passes `promtool check rules` and its unit tests, and
 * every metric the rules and contrib/grafana/licproxy.json query is one a real licproxy exports (scraped from a
 * balancer with an lmstat-checked licd pool, a checkout through it, and an alert configured). The same run shows
 * `feature_above` end to end: seats checked out past the threshold reach the webhook.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { LineClient, spawnLicd } from '../helpers/licd.ts';
import { REPO } from '../helpers/cli.ts';
import { request } from '../helpers/stats.ts';
import { waitFor } from '../helpers/wait.ts';
import { frontendPort, runBalancer } from '../alerts/run-balancer.ts';
import { startReceiver } from '../alerts/receiver.ts';

const RULES = join(REPO, 'contrib/prometheus/licproxy.rules.yml');
const RULES_TEST = join(REPO, 'contrib/prometheus/licproxy.rules.test.yml');
const DASHBOARD = join(REPO, 'contrib/grafana/licproxy.json');
const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));
/** Exported only with `cluster:` (balancer pairs sharing state through Redis); a plain balancer has none. */
const CLUSTER_ONLY = new Set(['licproxy_cluster_redis_up']);

function promtool(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(PROMTOOL!, args, { cwd: join(REPO, 'contrib/prometheus'), timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

const withPromtool = PROMTOOL ? test : test.skip;
if (!PROMTOOL) console.warn('promtool not installed (Debian package prometheus): the promtool checks are skipped');

withPromtool('promtool check rules accepts licproxy.rules.yml', async (t) => {
  const r = await promtool(['check', 'rules', RULES]);
  t.is(r.code, 0, r.out);
  t.regex(r.out, /SUCCESS: \d+ rules found/);
});

withPromtool('promtool test rules: the rules fire as their unit tests say', async (t) => {
  const r = await promtool(['test', 'rules', RULES_TEST]);
  t.is(r.code, 0, r.out);
  t.regex(r.out, /SUCCESS/);
});

test('the rules cover server down, pool unavailable, failover, feature above 90% for 10m, reload failed, Redis unreachable', (t) => {
  const rules = ruleExprs();
  const has = (fragment: string): boolean => [...rules.values()].some((r) => r.expr.includes(fragment));
  t.true(has('licproxy_server_up == 0'));
  t.true(has('licproxy_pool_available == 0'));
  t.true(has('licproxy_pool_failovers_total'));
  const feature = [...rules.values()].find((r) => r.expr.includes('licproxy_license_feature_used'));
  t.is(feature?.for, '10m');
  t.regex(feature?.expr ?? '', />= 0\.9/);
  t.true(has('licproxy_reload_total{result="failed"}'));
  t.true(has('licproxy_cluster_redis_up'));
});

interface Rule {
  expr: string;
  for?: string;
}

function ruleExprs(): Map<string, Rule> {
  const doc = parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string; for?: string }> }> };
  const out = new Map<string, Rule>();
  for (const g of doc.groups) for (const r of g.rules) out.set(r.alert, { expr: r.expr, ...(r.for ? { for: r.for } : {}) });
  return out;
}

/** Every PromQL expression of the dashboard: panel targets, template variables, annotations. */
function dashboardExprs(): string[] {
  const d = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    panels: Array<{ targets?: Array<{ expr: string }> }>;
    templating: { list: Array<{ query: { query: string } | string }> };
    annotations: { list: Array<{ expr?: string }> };
  };
  const out: string[] = [];
  for (const p of d.panels) for (const tg of p.targets ?? []) out.push(tg.expr);
  for (const v of d.templating.list) out.push(typeof v.query === 'string' ? v.query : v.query.query);
  for (const a of d.annotations.list) if (a.expr) out.push(a.expr);
  return out;
}

function metricNames(exprs: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const e of exprs) for (const m of e.matchAll(/\blicproxy_[a-z0-9_]+/g)) out.add(m[0]);
  return out;
}

test('every metric the dashboard and the rules query is exported by a real licproxy; feature_above reaches the webhook', async (t) => {
  const exprs = [...dashboardExprs(), ...[...ruleExprs().values()].map((r) => r.expr)];
  const wanted = metricNames(exprs);
  t.true(wanted.size >= 20, `${wanted.size} metric names`);

  const rx = await startReceiver(t);
  const licd = await spawnLicd({ name: 'lic1', features: [{ name: 'LS-DYNA', count: 2 }, { name: 'MPPDYNA', count: 64, kind: 'tokens' }] });
  t.teardown(licd.stop);
  const lp = await runBalancer(t, `pools:
  lic:
    protocol: licd
    check: { type: lmstat, interval: 200ms, fast_interval: 100ms, rise: 1, fall: 2 }
    servers:
      - { name: lic1, address: 127.0.0.1:${licd.ports.license} }
frontends:
  - { name: lic, listen: 127.0.0.1:0, pool: lic }
alerts:
  - { url: "${rx.url}", name: ops, events: [feature_above], feature_above: 90% }
`);
  await waitFor(async () => (await request(lp.stats, '/metrics')).body.includes('licproxy_license_feature_issued{pool="lic",server="lic1",feature="LS-DYNA"} 2'), { what: 'license metrics', timeout: 10_000 });
  const client = await LineClient.connect(frontendPort(readFileSync(lp.file, 'utf8'), 'lic'));
  t.teardown(() => client.socket.destroy());
  t.regex(await client.request('HELLO user=alice host=ws1'), /^OK/);
  t.regex(await client.request('CHECKOUT LS-DYNA count=2'), /^GRANTED/);
  await waitFor(() => rx.received.some((r) => r.json.event === 'feature_above'), { what: 'the feature_above alert', timeout: 10_000 });
  t.like(rx.received.find((r) => r.json.event === 'feature_above')!.json, { pool: 'lic', server: 'lic1', feature: 'LS-DYNA', used: 2, issued: 2 });
  // MPPDYNA is far below 90%: no alert for it.
  t.false(rx.received.some((r) => r.json.feature === 'MPPDYNA'));

  // /metrics may serve a rendering a few milliseconds old (stats-server.ts RENDER_BUDGET): poll until the checkout shows.
  const missingNow = async (): Promise<string[]> => {
    const body = (await request(lp.stats, '/metrics')).body;
    const exported = new Set(body.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)![0]));
    return [...wanted].filter((n) => !exported.has(n) && !CLUSTER_ONLY.has(n));
  };
  await waitFor(async () => (await missingNow()).length === 0, { what: 'every queried metric', timeout: 5_000 }).catch(() => {});
  t.deepEqual(await missingNow(), [], 'metrics queried but not exported');
  t.true([...wanted].some((n) => CLUSTER_ONLY.has(n)), 'the Redis metric is queried (cluster only)');
});
