/**
 * The licd-protocol pool keys (SPEC 8.2): `protocol`, `route`, `retry_denied`. Defaults, what implies what, and one
 * clear line with YAML path and line:column for every mistake.
 */
import test from 'ava';
import type { ConfigIssue } from '../../src/common/errors.ts';
import { parseProxyConfig } from '../../src/config/proxy-schema.ts';
import { proxyConfigIssues } from '../helpers/config-issues.ts';

function pool(extra: string, defaults = ''): string {
  return `${defaults}pools:
  lmx:
${extra}
    servers:
      - { name: a, address: 10.0.0.1:6200 }
frontends:
  - { name: lmx, listen: 0.0.0.0:6200, pool: lmx }
`;
}

function issuesOf(text: string): ConfigIssue[] {
  return proxyConfigIssues(text);
}

test('defaults: tcp, no routing, no retry; route: feature and retry_denied imply licd', (t) => {
  const plain = parseProxyConfig('t.yaml', pool('    mode: balance')).pools[0]!;
  t.like(plain, { protocol: 'tcp', route: 'none', retryDenied: false });
  t.like(parseProxyConfig('t.yaml', pool('    route: feature')).pools[0]!, { protocol: 'licd', route: 'feature' });
  t.like(parseProxyConfig('t.yaml', pool('    retry_denied: true')).pools[0]!, { protocol: 'licd', retryDenied: true });
  t.like(parseProxyConfig('t.yaml', pool('    protocol: licd')).pools[0]!, { protocol: 'licd', route: 'none' });
  // Under defaults: every pool inherits them.
  t.like(parseProxyConfig('t.yaml', pool('    mode: balance', 'defaults: { route: feature }\n')).pools[0]!, { protocol: 'licd', route: 'feature' });
});

test('mistakes are one line each, with path and position', (t) => {
  const conflict = issuesOf(pool('    protocol: tcp\n    route: feature'));
  t.is(conflict.length, 1);
  t.like(conflict[0], { line: 3, col: 15, path: 'pools.lmx.protocol' });
  t.regex(conflict[0]!.message, /route: feature reads the licd protocol/);

  const bad = issuesOf(pool('    protocol: flexlm\n    route: solver\n    retry_denied: maybe'));
  t.deepEqual(
    bad.map((i) => `${i.line}:${i.col} ${i.path}`),
    ['3:15 pools.lmx.protocol', '4:12 pools.lmx.route', '5:19 pools.lmx.retry_denied'],
  );
  for (const i of bad) t.false(/\n|at .*\.ts/.test(i.message), i.message);
});

test('route: feature is refused with worker processes (they do not see the servers\' features)', (t) => {
  const issues = issuesOf(`global: { workers: 2 }\n${pool('    route: feature')}`);
  t.is(issues.length, 1);
  t.like(issues[0], { line: 4, path: 'pools.lmx.route' });
  t.regex(issues[0]!.message, /global\.workers: 1/);
  t.like(parseProxyConfig('t.yaml', `global: { workers: 2 }\n${pool('    protocol: licd\n    retry_denied: true')}`).pools[0]!, { retryDenied: true });
});
