import test from 'ava';
import { PrometheusExporter } from '../../src/stats/render-prometheus.ts';
import { HOSTILE_NAME, largeSnapshot, scriptedSnapshot } from '../helpers/stats.ts';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface Family {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/**
 * A strict reader of the Prometheus text format 0.0.4: HELP and TYPE once per family and before its samples,
 * samples grouped by family, names and label names valid, label values correctly escaped, values numbers,
 * no duplicate series, histogram/summary suffixes only on those types.
 */
export function parsePrometheus(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const seenSeries = new Set<string>();
  let current: Family | null = null;
  const closed = new Set<string>();
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  for (const [i, line] of text.split('\n').entries()) {
    const where = `line ${i + 1}: ${line.slice(0, 120)}`;
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) {
        if (line.startsWith('# HELP') || line.startsWith('# TYPE')) throw new Error(`bad comment, ${where}`);
        continue;
      }
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`bad metric name, ${where}`);
      let fam = families.get(name);
      if (!fam) {
        if (closed.has(name)) throw new Error(`family reopened, ${where}`);
        if (current) closed.add(current.name);
        fam = { name, type: '', help: '', samples: [] };
        families.set(name, fam);
        current = fam;
      } else if (fam !== current || fam.samples.length > 0) {
        throw new Error(`HELP/TYPE after samples or out of group, ${where}`);
      }
      if (kind === 'HELP') {
        if (fam.help) throw new Error(`second HELP, ${where}`);
        fam.help = rest;
      } else {
        if (fam.type) throw new Error(`second TYPE, ${where}`);
        if (!TYPES.has(rest)) throw new Error(`unknown TYPE, ${where}`);
        fam.type = rest;
      }
      continue;
    }
    const sample = parseSample(line, where);
    if (!current) throw new Error(`sample before any TYPE, ${where}`);
    const base = familyOf(sample.name, current);
    if (base !== current.name) throw new Error(`sample of undeclared family (current ${current.name}), ${where}`);
    if (!current.type) throw new Error(`sample before TYPE, ${where}`);
    const key = `${sample.name}{${Object.entries(sample.labels).sort().map(([k, v]) => `${k}=${v}`).join(',')}}`;
    if (seenSeries.has(key)) throw new Error(`duplicate series, ${where}`);
    seenSeries.add(key);
    current.samples.push(sample);
  }
  for (const f of families.values()) if (!f.type) throw new Error(`family ${f.name} has no TYPE`);
  return families;
}

function familyOf(sampleName: string, current: Family): string {
  if (sampleName === current.name) return current.name;
  if (current.type === 'histogram' && ['_bucket', '_sum', '_count'].some((s) => sampleName === current.name + s)) return current.name;
  if (current.type === 'summary' && ['_sum', '_count'].some((s) => sampleName === current.name + s)) return current.name;
  return sampleName;
}

function parseSample(line: string, where: string): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)( -?\d+)?$/.exec(line);
  if (!m) throw new Error(`bad sample line, ${where}`);
  const [, name, rawLabels, rawValue] = m as unknown as [string, string, string | undefined, string];
  const labels: Record<string, string> = {};
  if (rawLabels) {
    let s = rawLabels.slice(1, -1);
    while (s.length > 0) {
      const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/.exec(s);
      if (!lm) throw new Error(`bad labels, ${where}`);
      const [all, lname, lvalue] = lm as unknown as [string, string, string];
      if (!LABEL.test(lname) || lname in labels) throw new Error(`bad or repeated label, ${where}`);
      labels[lname] = lvalue.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
      s = s.slice(all.length);
    }
  }
  let value: number;
  // Prometheus reads values with Go's ParseFloat, which takes NaN and Inf in any letter case (prom-client writes `Nan`).
  if (/^[-+]?inf(inity)?$/i.test(rawValue)) value = rawValue.startsWith('-') ? -Infinity : Infinity;
  else if (/^nan$/i.test(rawValue)) value = NaN;
  else {
    if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(rawValue)) throw new Error(`value is not a number, ${where}`);
    value = Number(rawValue);
  }
  return { name, labels, value };
}

function value(fams: Map<string, Family>, name: string, labels: Record<string, string>, sampleName = name): number | undefined {
  const f = fams.get(name);
  const s = f?.samples.find((x) => x.name === sampleName && Object.entries(labels).every(([k, v]) => x.labels[k] === v) &&
    Object.keys(x.labels).length === Object.keys(labels).length);
  return s?.value;
}

const SPEC_NAMES = [
  'licproxy_server_up', 'licproxy_server_sessions_current', 'licproxy_server_sessions_total', 'licproxy_server_bytes_in_total',
  'licproxy_server_bytes_out_total', 'licproxy_server_connect_errors_total', 'licproxy_server_check_duration_seconds',
  'licproxy_server_state_changes_total', 'licproxy_pool_failovers_total', 'licproxy_frontend_connections_total',
  'licproxy_frontend_denied_total', 'licproxy_affinity_bindings', 'licproxy_license_feature_issued', 'licproxy_license_feature_used',
];

test('the exposition passes a strict parse, has every SPEC 3 name, and _total families are counters', async (t) => {
  const exp = new PrometheusExporter();
  const text = await exp.render(scriptedSnapshot());
  t.true(exp.contentType.startsWith('text/plain; version=0.0.4'));
  const fams = parsePrometheus(text);
  for (const name of SPEC_NAMES) t.true(fams.has(name), `missing ${name}`);
  t.true(fams.has('process_cpu_user_seconds_total') && fams.has('nodejs_heap_size_used_bytes'), 'default metrics present');
  for (const f of fams.values()) {
    // prom-client's own `nodejs_active_resources_total` is a gauge; the rule is checked on licproxy's families.
    if (f.name.startsWith('licproxy_') && f.name.endsWith('_total')) t.is(f.type, 'counter', `${f.name} ends in _total`);
    if (f.name.startsWith('licproxy_') && f.type === 'counter') t.true(f.name.endsWith('_total'), `${f.name} is a counter`);
  }
  t.is(fams.get('licproxy_server_check_duration_seconds')!.type, 'histogram');
});

test('values are the snapshot values, labels escaped (hostile names round-trip)', async (t) => {
  const exp = new PrometheusExporter({ defaultMetrics: false });
  const fams = parsePrometheus(await exp.render(scriptedSnapshot()));
  const p = { pool: 'lsdyna', server: 'primary' };
  t.is(value(fams, 'licproxy_server_up', p), 1);
  t.is(value(fams, 'licproxy_server_sessions_current', p), 4);
  t.is(value(fams, 'licproxy_server_sessions_total', p), 123457);
  t.is(value(fams, 'licproxy_server_bytes_in_total', p), 9876543);
  t.is(value(fams, 'licproxy_server_bytes_out_total', p), 1234567);
  t.is(value(fams, 'licproxy_server_connect_errors_total', p), 11);
  t.is(value(fams, 'licproxy_server_state_changes_total', { ...p, to: 'down' }), 2);
  t.is(value(fams, 'licproxy_server_state_changes_total', { ...p, to: 'up' }), 3);
  t.is(value(fams, 'licproxy_server_check_duration_seconds', p, 'licproxy_server_check_duration_seconds_count'), 1);
  t.is(value(fams, 'licproxy_server_check_duration_seconds', p, 'licproxy_server_check_duration_seconds_sum'), 0.012);
  t.is(value(fams, 'licproxy_server_check_duration_seconds', { ...p, le: '0.025' }, 'licproxy_server_check_duration_seconds_bucket'), 1);
  t.is(value(fams, 'licproxy_server_check_duration_seconds', { ...p, le: '0.01' }, 'licproxy_server_check_duration_seconds_bucket'), 0);
  t.is(value(fams, 'licproxy_license_feature_issued', { ...p, feature: 'MPPDYNA' }), 1024);
  t.is(value(fams, 'licproxy_license_feature_used', { ...p, feature: 'MPPDYNA' }), 1000);
  t.is(value(fams, 'licproxy_license_feature_used', { ...p, feature: 'LS-DYNA' }), 3);
  t.is(value(fams, 'licproxy_pool_failovers_total', { pool: 'lsdyna' }), 3);
  t.is(value(fams, 'licproxy_affinity_bindings', { pool: 'lsdyna' }), 42);
  t.is(value(fams, 'licproxy_affinity_hits_total', { pool: 'lsdyna' }), 1001);
  t.is(value(fams, 'licproxy_pool_available', { pool: 'flex' }), 0);
  t.is(value(fams, 'licproxy_frontend_connections_total', { frontend: 'lstc', pool: 'lsdyna' }), 124243);
  t.is(value(fams, 'licproxy_frontend_denied_total', { frontend: 'lstc', pool: 'lsdyna' }), 7);
  // Statuses: falling (UP 1/3) and DRAIN are still up; rising (DOWN 1/2), MAINT and "no check" are not.
  const up = (pool: string, server: string): number | undefined => value(fams, 'licproxy_server_up', { pool, server });
  t.deepEqual(['secondary', 'tertiary', 'drained'].map((s) => up('lsdyna', s)), [1, 0, 1]);
  t.deepEqual(['flex1', 'flex2', 'flex3', 'flex4'].map((s) => up('flex', s)), [0, 0, 0, 1]);
  t.is(value(fams, 'licproxy_server_sessions_total', { pool: 'evil"pool', server: HOSTILE_NAME }), 1);
  t.is(value(fams, 'licproxy_license_feature_issued', { pool: 'evil"pool', server: HOSTILE_NAME, feature: '<b>feat</b>' }), 2);
});

test('counters follow the snapshot monotonically, each check is observed once, vanished servers lose their series', async (t) => {
  const exp = new PrometheusExporter({ defaultMetrics: false });
  const snap = scriptedSnapshot();
  const p = { pool: 'lsdyna', server: 'primary' };
  const count = 'licproxy_server_check_duration_seconds_count';
  let fams = parsePrometheus(await exp.render(snap));
  t.is(value(fams, 'licproxy_server_check_duration_seconds', p, count), 1);

  // Same snapshot again: nothing new observed, counters unchanged.
  fams = parsePrometheus(await exp.render(snap));
  t.is(value(fams, 'licproxy_server_check_duration_seconds', p, count), 1);
  t.is(value(fams, 'licproxy_server_sessions_total', p), 123457);

  const primary = snap.pools[0]!.servers[0]!;
  primary.stot += 10;
  primary.bytesIn += 500;
  primary.lastCheck = { ok: true, reason: 'ok', durationMs: 40, at: snap.at + 1000 };
  fams = parsePrometheus(await exp.render(snap));
  t.is(value(fams, 'licproxy_server_sessions_total', p), 123467);
  t.is(value(fams, 'licproxy_server_bytes_in_total', p), 9877043);
  t.is(value(fams, 'licproxy_server_check_duration_seconds', p, count), 2);
  t.true(Math.abs(value(fams, 'licproxy_server_check_duration_seconds', p, 'licproxy_server_check_duration_seconds_sum')! - 0.052) < 1e-9);

  // A reload removed the server "secondary" and the frontend "lstc_tokens".
  snap.pools[0]!.servers.splice(1, 1);
  snap.frontends.pop();
  const text = await exp.render(snap);
  parsePrometheus(text);
  t.false(text.includes('server="secondary"'), 'no series of a removed server, histogram included');
  t.false(text.includes('frontend="lstc_tokens"'));
  t.true(text.includes('server="tertiary"'));
});

test('bad values from an adapter (NaN, negative counters) still give a valid exposition', async (t) => {
  const exp = new PrometheusExporter({ defaultMetrics: false });
  const snap = scriptedSnapshot();
  const s = snap.pools[0]!.servers[0]!;
  s.stot = -5;
  s.scur = NaN;
  s.bytesIn = Infinity;
  const fams = parsePrometheus(await exp.render(snap));
  const p = { pool: 'lsdyna', server: 'primary' };
  t.is(value(fams, 'licproxy_server_sessions_total', p), 0);
  t.is(value(fams, 'licproxy_server_sessions_current', p), 0);
  t.is(value(fams, 'licproxy_server_bytes_in_total', p), 0);
});

test('100 pools x 10 servers (2 features each): every server and feature is exported, and again after the snapshot changes', async (t) => {
  // What a render costs is a figure, not a threshold here (one fails on a loaded machine): bench/metrics-render.ts.
  const exp = new PrometheusExporter();
  const snap = largeSnapshot(100, 10);
  const first = parsePrometheus(await exp.render(snap));
  t.is(first.get('licproxy_server_up')!.samples.length, 1000);
  t.is(first.get('licproxy_license_feature_used')!.samples.length, 2000);
  snap.at += 1000;
  for (const pool of snap.pools) for (const s of pool.servers) s.lastCheck = { ...s.lastCheck!, at: snap.at };
  const again = parsePrometheus(await exp.render(snap));
  t.is(again.get('licproxy_server_up')!.samples.length, 1000);
  t.is(again.get('licproxy_license_feature_used')!.samples.length, 2000);
});

test('no per-server queue family: clients wait in the pool queue (licproxy_pool_queue_current), never per server', async (t) => {
  const text = await new PrometheusExporter({ defaultMetrics: false }).render(scriptedSnapshot());
  t.notRegex(text, /licproxy_server_queue_current/);
  t.regex(text, /^licproxy_pool_queue_current\{/m);
});
