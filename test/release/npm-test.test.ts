import test from 'ava';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../helpers/cli.ts';

/**
 * scripts/test.js, the test runs of `npm test`, in a scratch project that has one failing test and one scale test
 * (which leaves a mark when it runs), with this repository's ava.
 */
async function runScripts(firstPasses: boolean): Promise<{ code: number | null; out: string; scaleRan: boolean }> {
  const dir = mkdtempSync(join(tmpdir(), 'licproxy-npmtest-'));
  try {
    mkdirSync(join(dir, 'scripts'));
    mkdirSync(join(dir, 'test', 'scale'), { recursive: true });
    copyFileSync(join(REPO, 'scripts', 'test.js'), join(dir, 'scripts', 'test.js'));
    symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
    const ava = { files: ['test/**/*.test.mjs', '!test/scale/**'], workerThreads: false };
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'scratch', type: 'module', ava }));
    writeFileSync(join(dir, 'ava.scale.config.js'), "export default { files: ['test/scale/**/*.test.mjs'], workerThreads: false };\n");
    writeFileSync(join(dir, 'test', 'a.test.mjs'), `import test from 'ava';\ntest('first', (t) => t.${firstPasses ? 'pass' : 'fail'}());\n`);
    writeFileSync(
      join(dir, 'test', 'scale', 'b.test.mjs'),
      "import test from 'ava';\nimport { writeFileSync } from 'node:fs';\ntest('scale', (t) => { writeFileSync('scale-ran', ''); t.pass(); });\n",
    );
    const child = spawn(process.execPath, ['scripts/test.js'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: '1' } });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const code = await new Promise<number | null>((r) => child.once('close', r));
    return { code, out, scaleRan: existsSync(join(dir, 'scale-ran')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('npm test: the scale test runs even when an earlier test failed, and the exit status says it failed', async (t) => {
  t.timeout(120_000);
  const r = await runScripts(false);
  t.true(r.scaleRan, r.out);
  t.is(r.code, 1, r.out);
  t.regex(r.out, /npm test: ava \(every test but the scale test\) failed/);
});

test('npm test: exit 0 when both runs pass', async (t) => {
  t.timeout(120_000);
  const r = await runScripts(true);
  t.true(r.scaleRan, r.out);
  t.is(r.code, 0, r.out);
});
