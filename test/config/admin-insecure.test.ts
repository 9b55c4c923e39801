/**
 * The admin API over plain HTTP on a non-loopback address sends its bearer token in clear text: refused unless
 * the operator writes `stats.admin.insecure: true`, and then the balancer warns when the listener opens.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { ConfigError } from '../../src/common/errors.ts';
import { isLoopback, parseProxyConfig } from '../../src/config/proxy-schema.ts';
import { StatsService } from '../../src/cli/services/stats-service.ts';
import { ProxyApp } from '../../src/proxy/app.ts';
import { freePort } from '../helpers/ports.ts';
import { captureLogger } from '../helpers/proxy.ts';

const dir = mkdtempSync(join(tmpdir(), 'licproxy-admin-insecure-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const TOKEN_FILE = join(dir, 'admin.token');
writeFileSync(TOKEN_FILE, 'admin-token-0123456789abcdef\n', { mode: 0o600 });
const FILE = join(dir, 'licproxy.yaml');

function config(listen: string, admin: string | null): string {
  return `stats:\n  listen: "${listen}"\n${admin === null ? '' : `  admin: { token_file: admin.token${admin} }\n`}pools:\n  p:\n    check: { type: none }\n    servers: [{ name: a, address: "127.0.0.1:1" }]\nfrontends: [{ name: f, listen: "127.0.0.1:31010", pool: p }]\n`;
}

test('loopback addresses', (t) => {
  for (const h of ['127.0.0.1', '127.3.2.1', '::1', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) t.true(isLoopback(h), h);
  for (const h of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.1', 'stats.example.com', '128.0.0.1', '::2']) t.false(isLoopback(h), h);
});

for (const listen of ['0.0.0.0:8404', '[::]:8404', '10.1.2.3:8404', 'stats.example.com:8404']) {
  test(`admin on ${listen} over plain HTTP is refused at stats.listen without insecure: true`, (t) => {
    const err = t.throws(() => parseProxyConfig(FILE, config(listen, '')), { instanceOf: ConfigError })!;
    t.deepEqual(err.issues.map((i) => [i.line, i.col, i.path]), [[2, 11, 'stats.listen']]);
    t.regex(err.issues[0]!.message, /not a loopback address\) over plain HTTP would send its bearer token in clear text: listen on 127\.0\.0\.1 .*or set stats\.admin\.insecure: true/);
    const ok = parseProxyConfig(FILE, config(listen, ', insecure: true'));
    t.deepEqual(ok.stats!.admin, { tokenFile: TOKEN_FILE, insecure: true });
  });
}

test('admin on loopback, and a read-only stats listener anywhere, need no opt-in', (t) => {
  for (const listen of ['127.0.0.1:8404', '[::1]:8404', 'localhost:8404']) {
    t.deepEqual(parseProxyConfig(FILE, config(listen, '')).stats!.admin, { tokenFile: TOKEN_FILE, insecure: false }, listen);
  }
  t.is(parseProxyConfig(FILE, config('0.0.0.0:8404', null)).stats!.admin, null);
  const err = t.throws(() => parseProxyConfig(FILE, config('127.0.0.1:8404', ', insecure: yes')), { instanceOf: ConfigError })!;
  t.is(err.issues[0]!.path, 'stats.admin.insecure');
});

test('with insecure: true on a non-loopback address the balancer warns when the admin API opens', async (t) => {
  const cfg = parseProxyConfig(FILE, config('0.0.0.0:0', ', insecure: true').replace('31010', String(await freePort())));
  const { log, lines } = captureLogger();
  const app = await ProxyApp.start({ config: cfg, log, services: [new StatsService({ log })] });
  t.teardown(() => app.stop(0));
  const warn = lines().find((l) => l.level === 40 && /insecure/.test(String(l.msg)));
  t.truthy(warn, JSON.stringify(lines()));
  t.regex(String(warn!.listen), /^0\.0\.0\.0:\d+$/);
});
