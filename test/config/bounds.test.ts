/**
 * A configuration file cannot cost unbounded time or memory to read: size, nesting, aliases, duplicate keys and
 * the number of reported errors are bounded, each refused with one line naming where.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { ConfigError, LpxError } from '../../src/common/errors.ts';
import { loadProxyConfigOffThread } from '../../src/config/off-thread.ts';
import { loadProxyConfig, parseProxyConfig } from '../../src/config/proxy-schema.ts';
import { MAX_ALIASED_NODES, MAX_CONFIG_BYTES, MAX_ISSUES } from '../../src/config/yaml-bounds.ts';

const VALID = 'pools:\n  p:\n    servers: [{ name: a, address: "127.0.0.1:1" }]\nfrontends: [{ name: f, listen: "127.0.0.1:31010", pool: p }]\n';

function tmpFile(t: { teardown(fn: () => void): void }, text: string | Buffer): string {
  const dir = mkdtempSync(join(tmpdir(), 'bounds-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'licproxy.yaml');
  writeFileSync(file, text);
  return file;
}

function issuesOf(t: ExecutionContext, fn: () => unknown): string[] {
  const err = t.throws(fn, { instanceOf: ConfigError });
  return err ? err.message.split('\n') : [];
}

/** 1,000 billion-laughs style: each level lists the previous ten times. */
function laughs(levels: number): string {
  let s = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
  for (let i = 1; i < levels; i++) s += `a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]\n`;
  return s + `global: *a${levels - 1}\n`;
}

test('a file above the size limit is refused with one line, before it is read whole', (t) => {
  const file = tmpFile(t, Buffer.alloc(MAX_CONFIG_BYTES + 1, 0x20));
  const err = t.throws(() => loadProxyConfig(file), { instanceOf: LpxError })!;
  t.is((err as LpxError).code, 'LPX_ERR_CONFIG');
  t.is(err.message, `${file}: configuration is ${MAX_CONFIG_BYTES + 1} bytes, above the limit of ${MAX_CONFIG_BYTES} (1 MiB): not parsed`);
  t.throws(() => parseProxyConfig('x.yaml', ' '.repeat(MAX_CONFIG_BYTES + 1)), { message: /above the limit/ });
});

test('a 1,000-server file is far below the size limit and valid', (t) => {
  const servers = Array.from({ length: 1000 }, (_, i) => `      - { name: s${i}, address: 10.0.${i >> 8}.${i & 255}:31010, weight: 10 }`);
  const text = `pools:\n  big:\n    check: { type: tcp, interval: 1s }\n    servers:\n${servers.join('\n')}\nfrontends:\n  - { name: big, listen: 127.0.0.1:31010, pool: big }\n`;
  t.true(text.length * 10 < MAX_CONFIG_BYTES, `${text.length} bytes`);
  t.is(parseProxyConfig('x.yaml', text).pools[0]!.servers.length, 1000);
});

test('aliases that expand without end (billion laughs) are refused; a few small aliases are fine', (t) => {
  const lines = issuesOf(t, () => parseProxyConfig('x.yaml', laughs(9)));
  t.deepEqual(lines, [`x.yaml:1:1 aliases (*name) reach more than ${MAX_ALIASED_NODES} values: not read`]);
  // Servers times pools: a small file whose schema walk would build millions of servers.
  const srv = `srvs: &S [${Array.from({ length: 400 }, (_, i) => `{name: s${i}, address: "10.0.0.1:1"}`).join(', ')}]`;
  const pools = Array.from({ length: 400 }, (_, i) => `  p${i}: *P\n`).join('');
  const text = `x:\n  ${srv}\n  p: &P { servers: *S }\npools:\n${pools}frontends: []\n`;
  t.true(issuesOf(t, () => parseProxyConfig('x.yaml', text)).some((l) => /aliases \(\*name\) reach more than/.test(l)));
  const ok = `defaults:\n  check: &chk { type: tcp, interval: 2s }\npools:\n  p:\n    check: *chk\n    servers: [{ name: a, address: "127.0.0.1:1" }]\n  q:\n    check: *chk\n    servers: [{ name: a, address: "127.0.0.1:2" }]\nfrontends: [{ name: f, listen: "127.0.0.1:31010", pool: p }]\n`;
  const c = parseProxyConfig('x.yaml', ok);
  t.is(c.pools[1]!.check.interval, 2000);
});

test('deep nesting is refused before parsing, with its line and column', (t) => {
  const flow = `global: ${'['.repeat(5000)}${']'.repeat(5000)}\n`;
  t.deepEqual(issuesOf(t, () => parseProxyConfig('x.yaml', flow)), ['x.yaml:1:73 more than 64 nested [ ] or { }: not parsed']);
  let block = 'global:\n';
  for (let d = 1; d <= 300; d++) block += `${' '.repeat(d)}k${d}:\n`;
  t.deepEqual(issuesOf(t, () => parseProxyConfig('x.yaml', block)), ['x.yaml:258:257 indentation deeper than 256 columns: not parsed']);
  // Brackets inside quoted strings and comments do not count.
  const quoted = VALID.replace('pools:', `# ${'['.repeat(100)}\nglobal: { log_level: info }\npools:`) + `x: "${'{'.repeat(100)}"\n`;
  t.true(issuesOf(t, () => parseProxyConfig('x.yaml', quoted)).every((l) => !/nested/.test(l)));
});

test('duplicate keys are each reported with their position; many keys in one map are not quadratic', (t) => {
  t.deepEqual(issuesOf(t, () => parseProxyConfig('x.yaml', `global:\n  grace: 1s\n  grace: 2s\n${VALID}`)), ['x.yaml:3:3 YAML: Map keys must be unique']);
  // 60,000 distinct unknown keys: reported, capped (the yaml package's own duplicate check compares every pair).
  const many = `global:\n${Array.from({ length: 60_000 }, (_, i) => `  k${i}: 1\n`).join('')}${VALID}`;
  const lines = issuesOf(t, () => parseProxyConfig('x.yaml', many));
  t.is(lines.length, MAX_ISSUES + 1);
  t.is(lines[MAX_ISSUES], `x.yaml:${MAX_ISSUES + 1}:3 and ${60_000 - MAX_ISSUES} more errors not shown`);
});

test('off-thread: the same answers as in-thread; a heap or time overrun is one line, not a crash', async (t) => {
  const good = tmpFile(t, VALID);
  const c = await loadProxyConfigOffThread(good);
  t.is(c.pools[0]!.name, 'p');
  t.true(Object.isFrozen(c) && Object.isFrozen(c.pools[0]!.servers[0]));
  const bad = tmpFile(t, `global:\n  grace: 30\n${VALID}`);
  const err = await t.throwsAsync(loadProxyConfigOffThread(bad), { instanceOf: ConfigError });
  t.deepEqual(err!.issues.map((i) => [i.line, i.col, i.path]), [[2, 10, 'global.grace']]);
  await t.throwsAsync(loadProxyConfigOffThread(join(good, 'nope')), { instanceOf: LpxError, message: /cannot read configuration/ });

  const big = tmpFile(t, `global:\n${Array.from({ length: 60_000 }, (_, i) => `  k${i}: 1\n`).join('')}${VALID}`);
  const oom = await t.throwsAsync(loadProxyConfigOffThread(big, { heapMb: 4 }), { instanceOf: LpxError });
  t.is(oom!.message, `${big}: reading the configuration took more than 4 MB of memory: not applied`);
  const slow = await t.throwsAsync(loadProxyConfigOffThread(big, { deadlineMs: 1 }), { instanceOf: LpxError });
  t.is(slow!.message, `${big}: reading the configuration took more than 0.001 s: not applied`);
});

test('a frontend on port 0 is refused with its line and column; the stats listener may use port 0', (t) => {
  const text = `stats:\n  listen: 127.0.0.1:0\npools:\n  p:\n    servers: [{ name: a, address: "127.0.0.1:1" }]\nfrontends:\n  - { name: f, listen: "127.0.0.1:0", pool: p }\n  - { name: g, listen: "[::]:0", pool: p }\n`;
  t.deepEqual(issuesOf(t, () => parseProxyConfig('x.yaml', text)), [
    'x.yaml:7:24 frontends[0].listen: port 0 is not an address clients can be told: name the port (1..65535), e.g. 127.0.0.1:31010',
    'x.yaml:8:24 frontends[1].listen: port 0 is not an address clients can be told: name the port (1..65535), e.g. [::]:31010',
  ]);
  t.is(parseProxyConfig('x.yaml', text.replace(/"127\.0\.0\.1:0"/, '"127.0.0.1:31010"').replace('"[::]:0"', '"[::]:31011"')).stats!.listen.port, 0);
});
