/** `stats.history` (SPEC 10): defaults, the directory relative to the file, and one line:column error per mistake. */
import test from 'ava';
import type { ConfigIssue } from '../../src/common/errors.ts';
import { parseProxyConfig } from '../../src/config/proxy-schema.ts';
import { proxyConfigIssues } from '../helpers/config-issues.ts';

const POOLS = `pools:
  p:
    servers: [{ name: a, address: "127.0.0.1:1" }]
frontends: [{ name: f, listen: "127.0.0.1:9", pool: p }]
`;

function issuesOf(text: string): ConfigIssue[] {
  return proxyConfigIssues(text, '/etc/licproxy/licproxy.yaml');
}

test('stats.history: keep defaults to 90 days; a relative dir is relative to the configuration file', (t) => {
  const c = parseProxyConfig('/etc/licproxy/licproxy.yaml', `stats:\n  history: { dir: history }\n${POOLS}`);
  t.deepEqual(c.stats!.history, { dir: '/etc/licproxy/history', keep: 90 * 86_400_000 });
  const d = parseProxyConfig('/etc/licproxy/licproxy.yaml', `stats:\n  history:\n    dir: /var/lib/licproxy\n    keep: 30d\n${POOLS}`);
  t.deepEqual(d.stats!.history, { dir: '/var/lib/licproxy', keep: 30 * 86_400_000 });
  t.is(parseProxyConfig('/etc/licproxy/licproxy.yaml', `stats:\n  listen: 127.0.0.1:8404\n${POOLS}`).stats!.history, null);
});

test('stats.history mistakes: one line each, at the line and column of the value', (t) => {
  const cases: Array<[string, string, string, RegExp]> = [
    ['stats:\n  history: { keep: 30d }\n', '2:12', 'stats.history.dir', /is required/],
    ['stats:\n  history:\n    dir: /var/lib/licproxy\n    keep: 10m\n', '4:11', 'stats.history.keep', /at least 3600000ms/],
    ['stats:\n  history:\n    dir: /var/lib/licproxy\n    keep: 30\n', '4:11', 'stats.history.keep', /needs a unit/],
    ['stats:\n  history:\n    dir: /var/lib/licproxy\n    kept: 30d\n', '4:5', 'stats.history.kept', /unknown key "kept"; did you mean "keep"/],
    ['stats:\n  history: /var/lib/licproxy\n', '2:12', 'stats.history', /expected a mapping/],
  ];
  for (const [yaml, where, path, msg] of cases) {
    const issues = issuesOf(yaml + POOLS);
    t.is(issues.length, 1, `${yaml}: ${issues.map((i) => i.message).join('; ')}`);
    const i = issues[0]!;
    t.is(`${i.line}:${i.col}`, where, yaml);
    t.is(i.path, path, yaml);
    t.regex(i.message, msg, yaml);
    t.false(i.message.includes('\n'));
  }
});
