/**
 * The admin token file: a token that is too short, whitespace only, or has whitespace inside is refused by
 * `check` and `run` with the YAML path and line:column of `stats.admin.token_file` (a whitespace-only file used
 * to turn the admin API off silently, and a token with a space could never authenticate).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { ConfigError } from '../../src/common/errors.ts';
import { parseProxyConfig } from '../../src/config/proxy-schema.ts';
import { AdminToken, MIN_TOKEN_BYTES } from '../../src/stats/admin-token.ts';
import { LICPROXY, runBin } from '../helpers/cli.ts';

const GOOD = 'a-token-of-enough-length-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'licproxy-admin-token-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function config(tokenFile: string): string {
  return `stats:\n  listen: 127.0.0.1:8404\n  admin:\n    token_file: ${tokenFile}\npools:\n  p:\n    servers: [{ name: a, address: "127.0.0.1:1" }]\nfrontends: [{ name: f, listen: "127.0.0.1:31010", pool: p }]\n`;
}

function tokenFile(name: string, content: string): string {
  const file = join(dir, name);
  writeFileSync(file, content, { mode: 0o600 });
  return file;
}

const BAD: Array<[string, string, RegExp]> = [
  ['one character', 'x\n', new RegExp(`holds a token of 1 bytes: use at least ${MIN_TOKEN_BYTES}`)],
  ['15 characters', `${'k'.repeat(15)}\n`, /holds a token of 15 bytes/],
  ['whitespace only', ' \n\t\n  \n', /holds only whitespace/],
  ['empty', '', /is empty/],
  ['a space inside', 'correct horse battery staple\n', /whitespace inside: a bearer token is one word/],
  ['a tab inside', 'abcdefgh\tijklmnopq\n', /whitespace inside/],
  ['non-ASCII', 'tökenтокен-0123456789\n', /other than visible ASCII/],
  ['a control byte', 'token-0123456789\x1b[2J\n', /other than visible ASCII/],
];

for (const [what, content, message] of BAD) {
  test(`a token file with ${what} is refused at stats.admin.token_file, with line and column`, (t) => {
    const file = tokenFile(`${what.replace(/\W/g, '_')}.token`, content);
    const err = t.throws(() => parseProxyConfig(join(dir, 'licproxy.yaml'), config(file)), { instanceOf: ConfigError })!;
    t.deepEqual(err.issues.map((i) => [i.line, i.col, i.path]), [[4, 17, 'stats.admin.token_file']]);
    t.regex(err.issues[0]!.message, message);
    t.true(err.issues[0]!.message.startsWith(`token file "${file}" `));
    t.throws(() => new AdminToken(content), { message: /^admin token / });
  });
}

test('a token of 16 or more visible characters, with a trailing newline, is accepted', (t) => {
  const file = tokenFile('good.token', `${GOOD}\n`);
  t.is(parseProxyConfig(join(dir, 'licproxy.yaml'), config(file)).stats!.admin!.tokenFile, file);
  t.true(new AdminToken(`${GOOD}\n`).verify(`Bearer ${GOOD}`));
  t.notThrows(() => new AdminToken('k'.repeat(MIN_TOKEN_BYTES)));
});

test('licproxy check and licproxy run refuse a whitespace-only token file: one line with path and position, exit 1', async (t) => {
  const file = join(dir, 'blank-cli.yaml');
  const token = tokenFile('blank-cli.token', '   \n');
  writeFileSync(file, config(token));
  const expected = `${file}:4:17 stats.admin.token_file: token file "${token}" holds only whitespace`;
  const check = await runBin(LICPROXY, ['check', '-c', file]);
  t.is(check.code, 1);
  t.is(check.stderr.split('\n')[0], expected);
  const run = await runBin(LICPROXY, ['run', '-c', file]);
  t.is(run.code, 1);
  t.is(run.stdout, '');
  t.is(run.stderr, `licproxy: ${expected}\n`);
});
