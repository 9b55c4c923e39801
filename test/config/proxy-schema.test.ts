import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { ConfigIssue } from '../../src/common/errors.ts';
import { parseProxyConfig } from '../../src/config/proxy-schema.ts';
import { MINIMAL_PROXY_YAML, proxyConfigIssues } from '../helpers/config-issues.ts';

const MINIMAL = MINIMAL_PROXY_YAML;

function issuesOf(text: string): ConfigIssue[] {
  return proxyConfigIssues(text);
}

/** Asserts exactly one issue at `line:col` whose text contains every fragment. */
function expectIssue(t: import('ava').ExecutionContext, text: string, where: string, path: string, ...fragments: string[]) {
  const issues = issuesOf(text);
  t.is(issues.length, 1, issues.map((i) => `${i.line}:${i.col} ${i.path}: ${i.message}`).join('\n'));
  const [i] = issues;
  t.is(`${i!.line}:${i!.col}`, where);
  t.is(i!.path, path);
  for (const f of fragments) t.true(i!.message.includes(f), `"${i!.message}" lacks "${f}"`);
}

test('a minimal single-port pool is valid and fills every default', (t) => {
  const c = parseProxyConfig('t.yaml', MINIMAL);
  const pool = c.pools[0]!;
  t.deepEqual(pool.ports, { main: 6200 });
  t.deepEqual(pool.servers[0]!.ports, { main: 6200 });
  t.is(pool.balance, 'roundrobin');
  t.is(pool.retries, 3);
  t.is(pool.timeouts.idle, 30 * 60_000);
  t.is(pool.check.type, 'tcp');
  t.is(pool.check.port, 'main');
  t.is(pool.check.fastInterval, 250);
  t.is(c.frontends[0]!.port, 'main');
  t.is(c.global.maxConnections, 50_000);
  t.is(c.stats, null);
  t.true(Object.isFrozen(pool.servers[0]));
});

test('defaults are inherited and pool values override them key by key', (t) => {
  const c = parseProxyConfig(
    't.yaml',
    `defaults:
  balance: leastconn
  retries: 5
  timeouts: { connect: 1s, idle: 2h }
  check: { type: tcp, interval: 3s, rise: 4 }
pools:
  a:
    timeouts: { connect: 250ms }
    check: { interval: 500ms }
    servers: [ { name: s, address: 127.0.0.1:1 } ]
  b:
    balance: first
    servers: [ { name: s, address: 127.0.0.1:2 } ]
frontends:
  - { name: a, listen: 127.0.0.1:9, pool: a }
`,
  );
  const [a, b] = c.pools;
  t.is(a!.balance, 'leastconn');
  t.is(a!.retries, 5);
  t.deepEqual(a!.timeouts, { connect: 250, idle: 7_200_000, queue: 10_000, clientFin: 30_000 });
  t.is(a!.check.interval, 500);
  t.is(a!.check.rise, 4);
  t.is(b!.balance, 'first');
  t.is(b!.timeouts.connect, 1000);
});

test('named ports, per-server overrides and tiers', (t) => {
  const c = parseProxyConfig(
    't.yaml',
    `pools:
  lsdyna:
    ports: { license: 31010, tokens: 31011 }
    servers:
      - { name: primary, host: 10.0.0.1, weight: 100 }
      - { name: tertiary, host: 10.0.0.3, weight: 60, tier: 2, ports: { tokens: 31099 } }
frontends:
  - { name: lic, listen: 0.0.0.0:31010, pool: lsdyna, port: license }
  - { name: tok, listen: 0.0.0.0:31011, pool: lsdyna, port: tokens, send_proxy: v2, allow: [10.0.0.0/8, "::1"] }
`,
  );
  const [p, t3] = c.pools[0]!.servers;
  t.deepEqual(p!.ports, { license: 31010, tokens: 31011 });
  t.deepEqual(t3!.ports, { license: 31010, tokens: 31099 });
  t.is(t3!.tier, 2);
  t.is(c.frontends[1]!.sendProxy, 'v2');
  t.deepEqual(c.frontends[1]!.allow, ['10.0.0.0/8', '::1']);
});

const errorCases: Array<[title: string, text: string, where: string, path: string, ...fragments: string[]]> = [
  ['unknown key with suggestion', MINIMAL.replace('pools:', 'global:\n  max_conections: 5\npools:'), '2:3', 'global.max_conections', 'unknown key', '"max_connections"'],
  ['bare number as duration', MINIMAL.replace('pools:', 'global:\n  grace: 30\npools:'), '2:10', 'global.grace', 'needs a unit', '"30s"'],
  ['malformed duration', MINIMAL.replace('pools:', 'global:\n  grace: 30 seconds\npools:'), '2:10', 'global.grace', 'expected a duration'],
  ['weight out of range', MINIMAL.replace('6200 }', '6200, weight: 300 }'), '4:52', 'pools.lmx.servers[0].weight', '0..256', '300'],
  ['negative tier', MINIMAL.replace('6200 }', '6200, tier: -1 }'), '4:50', 'pools.lmx.servers[0].tier', 'whole number'],
  ['bad enum with suggestion', MINIMAL.replace('    servers:', '    balance: roundrobbin\n    servers:'), '3:14', 'pools.lmx.balance', 'roundrobin | leastconn', 'did you mean "roundrobin"'],
  ['malformed address', MINIMAL.replace('10.0.0.1:6200', '10.0.0.1'), '4:29', 'pools.lmx.servers[0].address', 'host:port'],
  ['port out of range', MINIMAL.replace('0.0.0.0:6200', '0.0.0.0:70000'), '6:26', 'frontends[0].listen', '65535'],
  ['unknown pool in frontend', MINIMAL.replace('pool: lmx }', 'pool: lxm }'), '6:46', 'frontends[0].pool', 'unknown pool "lxm"', 'did you mean "lmx"'],
  ['duplicate server name', MINIMAL.replace('      - { name: a, address: 10.0.0.1:6200 }', '      - { name: a, address: 10.0.0.1:6200 }\n      - { name: a, address: 10.0.0.2:6200 }'), '5:17', 'pools.lmx.servers[1].name', 'duplicate server name "a"', 'line 4'],
  ['duplicate listen address', MINIMAL + '  - { name: lmx2, listen: 127.0.0.1:6200, pool: lmx }\n', '7:27', 'frontends[1].listen', 'already the listen address of frontend lmx'],
  ['duplicate frontend name', MINIMAL + '  - { name: lmx, listen: 127.0.0.1:6201, pool: lmx }\n', '7:13', 'frontends[1].name', 'duplicate frontend name'],
  ['bad CIDR', MINIMAL.replace('pool: lmx }', 'pool: lmx, allow: [10.0.0.0/40] }'), '6:59', 'frontends[0].allow[0]', 'prefix length'],
  ['master mode needs an lmstat check', MINIMAL.replace('    servers:', '    mode: master\n    servers:'), '3:11', 'pools.lmx.mode', 'check.type: lmstat or external'],
  ['send_expect without expect', MINIMAL.replace('    servers:', '    check: { type: send_expect, send: "STATUS\\n" }\n    servers:'), '3:12', 'pools.lmx.check.expect', 'is required for check.type send_expect'],
  ['invalid expect regex', MINIMAL.replace('    servers:', '    check: { type: send_expect, send: "S", expect: "(" }\n    servers:'), '3:52', 'pools.lmx.check.expect', 'regular expression'],
  ['unknown server port override', `pools:
  p:
    ports: { license: 1, tokens: 2 }
    servers:
      - { name: a, host: 127.0.0.1, ports: { tokn: 3 } }
frontends:
  - { name: f, listen: 127.0.0.1:9, pool: p, port: license }
`, '5:52', 'pools.p.servers[0].ports.tokn', 'unknown port name "tokn"', 'did you mean "tokens"'],
  ['frontend port is not a named port of the pool', `pools:
  p:
    ports: { license: 1, tokens: 2 }
    servers: [ { name: a, host: 127.0.0.1 } ]
frontends:
  - { name: f, listen: 127.0.0.1:9, pool: p, port: vendor }
`, '6:52', 'frontends[0].port', 'unknown port name "vendor"', 'license, tokens'],
  ['multi-port pool frontend without port', `pools:
  p:
    ports: { license: 1, tokens: 2 }
    servers: [ { name: a, host: 127.0.0.1 } ]
frontends:
  - { name: f, listen: 127.0.0.1:9, pool: p }
`, '6:5', 'frontends[0]', 'port: is required'],
  ['host without named ports', `pools:
  p:
    servers: [ { name: a, host: 127.0.0.1 } ]
frontends:
  - { name: f, listen: 127.0.0.1:9, pool: p }
`, '3:5', 'pools.p.ports', 'is required when servers are written with host:'],
  ['YAML syntax error', 'pools:\n  a: [1, 2\n', '3:1', '', 'YAML'],
  ['missing daemon file', MINIMAL + 'daemons: [ /nonexistent/licd.yaml ]\n', '7:12', 'daemons[0]', 'does not exist'],
];

for (const [title, text, where, path, ...fragments] of errorCases) {
  test(`config error: ${title}`, (t) => expectIssue(t, text, where, path, ...fragments));
}

test('every error in the file is reported at once, in file order', (t) => {
  const issues = issuesOf(`global:
  grace: 5
pools:
  lmx:
    servers:
      - { name: a, address: 10.0.0.1:6200, weight: 999 }
frontends:
  - { name: lmx, listen: 0.0.0.0:6200, pool: nope }
`);
  t.deepEqual(
    issues.map((i) => `${i.line}:${i.col} ${i.path}`),
    ['2:10 global.grace', '6:52 pools.lmx.servers[0].weight', '8:46 frontends[0].pool'],
  );
});

test('an empty file and a non-mapping root are errors, not crashes', (t) => {
  t.regex(issuesOf('')[0]!.message, /empty/);
  t.regex(issuesOf('- a\n- b\n')[0]!.message, /expected a mapping/);
});

test('an unknown key in a pool is reported once', (t) => {
  const issues = issuesOf(MINIMAL.replace('    servers:', '    chekc: { type: tcp }\n    servers:'));
  t.deepEqual(issues.map((i) => `${i.line}:${i.col} ${i.path}`), ['3:5 pools.lmx.chekc']);
  t.regex(issues[0]!.message, /did you mean "check"/);
});

test('stats.admin.token_file: a relative path is relative to the configuration file; errors name the full path', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'licproxy-token-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'admin.token'), 'secret-0123456789abcdef\n', { mode: 0o600 });
  const text = (tf: string) => `stats:\n  listen: 127.0.0.1:9\n  admin: { token_file: ${tf} }\npools:\n  p:\n    servers: [{ name: a, address: "127.0.0.1:1" }]\nfrontends: [{ name: f, listen: "127.0.0.1:9", pool: p }]\n`;
  const file = join(dir, 'licproxy.yaml');
  t.is(parseProxyConfig(file, text('admin.token')).stats!.admin!.tokenFile, join(dir, 'admin.token'));
  const err = t.throws(() => parseProxyConfig(file, text('nope.token')));
  t.true(err!.message.includes(`token file "${join(dir, 'nope.token')}" does not exist`), err!.message);
});

test('global.orphan_grace: a duration up to 7d, 24h by default', (t) => {
  t.is(parseProxyConfig('t.yaml', MINIMAL).global.orphanGrace, 86_400_000);
  t.is(parseProxyConfig('t.yaml', `global:\n  orphan_grace: 90m\n${MINIMAL}`).global.orphanGrace, 5_400_000);
  expectIssue(t, `global:\n  orphan_grace: 8d\n${MINIMAL}`, '2:17', 'global.orphan_grace', 'at most 7d', '8d');
  expectIssue(t, `global:\n  orphan_grace: 30\n${MINIMAL}`, '2:17', 'global.orphan_grace', 'needs a unit');
});
