import test from 'ava';
import type { ConfigIssue } from '../../src/common/errors.ts';
import { parseProxyConfig } from '../../src/config/proxy-schema.ts';
import { MINIMAL_PROXY_YAML, proxyConfigIssues } from '../helpers/config-issues.ts';

const BASE = MINIMAL_PROXY_YAML;

function issuesOf(text: string): ConfigIssue[] {
  return proxyConfigIssues(text, '/etc/licproxy/t.yaml');
}

function one(t: import('ava').ExecutionContext, text: string, where: string, path: string, fragment: string): void {
  const issues = issuesOf(text);
  t.is(issues.length, 1, issues.map((i) => `${i.line}:${i.col} ${i.path}: ${i.message}`).join('\n'));
  t.is(`${issues[0]!.line}:${issues[0]!.col}`, where);
  t.is(issues[0]!.path, path);
  t.true(issues[0]!.message.includes(fragment), issues[0]!.message);
}

test('alerts: every key read, defaults filled, the name defaults to the URL host', (t) => {
  const c = parseProxyConfig('t.yaml', `${BASE}alerts:
  - url: https://hooks.slack.com/services/T0/B0/secret
    format: slack
    events: [down, up, feature_above]
    feature_above: 85%
    min_interval: 30s
    timeout: 2s
    retries: 2
    headers: { X-Token: abc, X-Num: 5 }
  - { url: "http://127.0.0.1:9000/hook", name: ops }
`);
  const [a, b] = c.alerts!;
  t.is(a!.name, 'hooks.slack.com');
  t.is(a!.format, 'slack');
  t.deepEqual(a!.events, ['down', 'up', 'feature_above']);
  t.is(a!.featureAbove, 0.85);
  t.is(a!.minInterval, 30_000);
  t.is(a!.timeout, 2_000);
  t.is(a!.retries, 2);
  t.deepEqual(a!.headers, { 'X-Token': 'abc', 'X-Num': '5' });
  t.is(b!.name, 'ops');
  t.is(b!.format, 'json');
  t.deepEqual(b!.events, ['down', 'up', 'failover', 'failback', 'pool_unavailable', 'reload_failed']);
  t.is(b!.minInterval, 60_000);
});

test('alerts: a bad value is one line with line:column and path, and never echoes the URL', (t) => {
  one(t, `${BASE}alerts:\n  - { url: "ftp://secret@host/x" }\n`, '8:12', 'alerts[0].url', 'http:// or https://');
  t.false(issuesOf(`${BASE}alerts:\n  - { url: "ftp://secret@host/x" }\n`)[0]!.message.includes('secret'));
  one(t, `${BASE}alerts:\n  - { url: "not a url" }\n`, '8:12', 'alerts[0].url', 'is not a URL');
  one(t, `${BASE}alerts:\n  - url: http://h/x\n    format: discord\n`, '9:13', 'alerts[0].format', 'slack | teams | json');
  one(t, `${BASE}alerts:\n  - url: http://h/x\n    events: [down, exploded]\n`, '9:20', 'alerts[0].events[1]', 'must be one of');
  one(t, `${BASE}alerts:\n  - url: http://h/x\n    events: [feature_above]\n    feature_above: 0.9\n`, '10:20', 'alerts[0].feature_above', 'percentage');
  one(t, `${BASE}alerts:\n  - url: http://h/x\n    feature_above: 90%\n`, '9:20', 'alerts[0].feature_above', 'events does not list feature_above');
  one(t, `${BASE}alerts:\n  - url: http://h/x\n    min_interval: 60\n`, '9:19', 'alerts[0].min_interval', 'needs a unit');
  one(t, `${BASE}alerts:\n  - url: http://h/x\n    timeout: 10ms\n`, '9:14', 'alerts[0].timeout', 'at least 100ms');
  one(t, `${BASE}alerts:\n  - url: http://h/x\n    headers: { Content-Type: text/plain }\n`, '9:30', 'alerts[0].headers.Content-Type', 'set by licproxy');
  one(t, `${BASE}alerts:\n  - url: http://h/x\n    colour: red\n`, '9:5', 'alerts[0].colour', 'unknown key');
  one(t, `${BASE}alerts:\n  - format: slack\n`, '8:5', 'alerts[0].url', 'is required');
  one(t, `${BASE}alerts: { url: http://h/x }\n`, '7:9', 'alerts', 'expected a list');
});

test('stats.events: file resolved against the configuration folder, keep bounded', (t) => {
  const c = parseProxyConfig('/etc/licproxy/t.yaml', `${BASE}stats:\n  events: { file: state/events.jsonl }\n`);
  t.deepEqual(c.stats!.events, { file: '/etc/licproxy/state/events.jsonl', keep: 1000 });
  one(t, `${BASE}stats:\n  events: { file: e.jsonl, keep: 0 }\n`, '8:34', 'stats.events.keep', 'whole number 1..100000');
  one(t, `${BASE}stats:\n  events: { keep: 10 }\n`, '8:11', 'stats.events.file', 'is required');
});
