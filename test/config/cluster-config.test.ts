import test from 'ava';
import type { ConfigIssue } from '../../src/common/errors.ts';
import { parseProxyConfig } from '../../src/config/proxy-schema.ts';
import { MINIMAL_PROXY_YAML, proxyConfigIssues } from '../helpers/config-issues.ts';

const BASE = MINIMAL_PROXY_YAML;

function issuesOf(text: string): ConfigIssue[] {
  return proxyConfigIssues(text);
}

function oneIssue(t: import('ava').ExecutionContext, cluster: string, where: string, path: string, fragment: string): void {
  const issues = issuesOf(BASE + cluster);
  t.is(issues.length, 1, issues.map((i) => `${i.line}:${i.col} ${i.path}: ${i.message}`).join('\n'));
  t.is(`${issues[0]!.line}:${issues[0]!.col}`, where);
  t.is(issues[0]!.path, path);
  t.true(issues[0]!.message.includes(fragment), issues[0]!.message);
}

test('no cluster section: the config has no cluster key', (t) => {
  t.is(parseProxyConfig('t.yaml', BASE).cluster, undefined);
});

test('a URL cluster fills instance (host name) and timeout (50ms)', (t) => {
  const c = parseProxyConfig('t.yaml', `${BASE}cluster:\n  name: lic-lb\n  redis: redis://127.0.0.1:6379/0\n`).cluster!;
  t.is(c.name, 'lic-lb');
  t.is(c.timeout, 50);
  t.regex(c.instance, /^[A-Za-z0-9][A-Za-z0-9_.-]*$/);
  t.deepEqual(c.redis, { kind: 'url', url: 'redis://127.0.0.1:6379/0' });
});

test('a Sentinel cluster takes host:port strings and { host, port } maps', (t) => {
  const c = parseProxyConfig(
    't.yaml',
    `${BASE}cluster:\n  name: lic-lb\n  instance: lb2\n  timeout: 80ms\n  redis:\n    name: mymaster\n    password: pw\n    sentinels: [10.0.0.5:26379, { host: 10.0.0.6, port: 26380 }]\n`,
  ).cluster!;
  t.is(c.instance, 'lb2');
  t.is(c.timeout, 80);
  t.deepEqual(c.redis, { kind: 'sentinel', name: 'mymaster', password: 'pw', sentinels: [{ host: '10.0.0.5', port: 26379 }, { host: '10.0.0.6', port: 26380 }] });
});

test('bad cluster values: one line each, with line:column and path', (t) => {
  oneIssue(t, 'cluster:\n  redis: redis://r:6379\n', '8:3', 'cluster.name', 'required');
  oneIssue(t, 'cluster:\n  name: "a b"\n  redis: redis://r:6379\n', '8:9', 'cluster.name', 'not valid');
  oneIssue(t, 'cluster:\n  name: x\n  redis: http://r:6379\n', '9:10', 'cluster.redis', 'redis://');
  oneIssue(t, 'cluster:\n  name: x\n  redis: 6379\n', '9:10', 'cluster.redis', 'redis:// URL or a mapping');
  oneIssue(t, 'cluster:\n  name: x\n  redis: redis://r:6379/abc\n', '9:10', 'cluster.redis', 'database');
  oneIssue(t, 'cluster:\n  name: x\n  redis: redis://r\n  timeout: 50\n', '10:12', 'cluster.timeout', 'unit');
  oneIssue(t, 'cluster:\n  name: x\n  redis: redis://r\n  timeout: 1m\n', '10:12', 'cluster.timeout', 'at most');
  oneIssue(t, 'cluster:\n  name: x\n  redis: redis://r\n  timeot: 1s\n', '10:3', 'cluster.timeot', 'did you mean "timeout"');
  oneIssue(t, 'cluster:\n  name: x\n  redis: { name: m, sentinels: [] }\n', '9:32', 'cluster.redis.sentinels', 'at least one');
  oneIssue(t, 'cluster:\n  name: x\n  redis: { name: m, sentinels: [nohost] }\n', '9:33', 'cluster.redis.sentinels[0]', 'host:port');
  oneIssue(t, 'cluster:\n  name: x\n  redis: { sentinels: [h:1] }\n', '9:10', 'cluster.redis.name', 'required');
});
