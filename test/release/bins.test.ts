import test from 'ava';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, runBin } from '../helpers/cli.ts';
import { requireFreshDist, VERSION } from './dist.ts';

// bin/ runs the compiled dist/ (the other tests run the sources through tsx).
const LICPROXY_BIN = join(REPO, 'bin', 'licproxy.js');
const LICD_BIN = join(REPO, 'bin', 'licd.js');

test('the compiled executables say the version of package.json', async (t) => {
  if (!requireFreshDist(t)) return;
  for (const bin of [LICPROXY_BIN, LICD_BIN]) {
    const r = await runBin(bin, ['--version']);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout.trim(), VERSION);
  }
});

test('the compiled licproxy checks the shipped configurations', async (t) => {
  if (!requireFreshDist(t)) return;
  for (const file of ['conf/licproxy.yaml', 'conf/demo.yaml']) {
    const r = await runBin(LICPROXY_BIN, ['check', '-c', file]);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout.trim(), 'configuration is valid');
  }
  const bad = await runBin(LICPROXY_BIN, ['check', '-c', 'conf/no-such-file.yaml']);
  t.is(bad.code, 1);
  t.notRegex(bad.stderr, /\n\s+at /, 'no stack trace');
});

test('without dist/ the executables say, in one line, to build', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'licproxy-nodist-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'bin'));
  for (const bin of ['licproxy', 'licd']) {
    copyFileSync(join(REPO, 'bin', `${bin}.js`), join(dir, 'bin', `${bin}.js`));
    const r = await runBin(join(dir, 'bin', `${bin}.js`), ['--version'], { cwd: dir });
    t.is(r.code, 1);
    t.is(r.stdout, '');
    t.is(r.stderr, `${bin}: dist/cli/${bin}.js is missing: run npm run build\n`);
  }
});

test('the version is written only in package.json', (t) => {
  const literal = new RegExp(`['"\`]${VERSION.replaceAll('.', '\\.')}['"\`]`);
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => {
      const p = join(dir, n);
      return statSync(p).isDirectory() ? walk(p) : [p];
    });
  const files = [...walk(join(REPO, 'src')), ...walk(join(REPO, 'bin'))].filter((f) => /\.(ts|js)$/.test(f));
  t.true(files.length > 10);
  t.deepEqual(
    files.filter((f) => literal.test(readFileSync(f, 'utf8'))),
    [],
  );
});
