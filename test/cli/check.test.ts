import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LICPROXY, runBin } from '../helpers/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'licproxy-check-'));

test('check accepts the shipped default configuration', async (t) => {
  const r = await runBin(LICPROXY, ['check', '-c', 'conf/licproxy.yaml']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'configuration is valid\n');
});

test('check lists every error with file:line:column and YAML path, exit 1, no stack', async (t) => {
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, 'global:\n  grace: 30\npools:\n  p:\n    servers: [ { name: a, address: 127.0.0.1:1, weight: 900 } ]\nfrontends:\n  - { name: f, listen: 127.0.0.1:9, pool: q }\n');
  const r = await runBin(LICPROXY, ['check', '-c', file]);
  t.is(r.code, 1);
  const lines = r.stderr.trimEnd().split('\n');
  t.deepEqual(lines.slice(0, 3).map((l) => l.split(' ')[0]), [`${file}:2:10`, `${file}:5:57`, `${file}:7:43`]);
  t.regex(lines[1]!, /pools\.p\.servers\[0\]\.weight: must be a whole number 0\.\.256, got 900/);
  t.regex(lines.at(-1)!, /3 errors, configuration is not valid/);
  t.notRegex(r.stderr, /\n\s+at /, 'no stack trace');
});

test('check on a missing file is one line and exit 1', async (t) => {
  const r = await runBin(LICPROXY, ['check', '-c', join(dir, 'nope.yaml')]);
  t.is(r.code, 1);
  t.regex(r.stderr, /nope\.yaml: cannot read configuration: no such file/);
  t.is(r.stderr.trim().split('\n').length, 1);
});

test('unknown options are usage errors (exit 1)', async (t) => {
  const r = await runBin(LICPROXY, ['check', '--bogus']);
  t.is(r.code, 1);
  t.regex(r.stderr, /unknown option/);
});
