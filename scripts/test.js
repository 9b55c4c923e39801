#!/usr/bin/env node
// The test runs of `npm test` (after the build and the type check): every test, then the scale test alone
// (ava.scale.config.js says why alone). The scale test runs even when an earlier test failed, so one failure does
// not hide another; the exit status is non-zero when either run failed.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

// ava's command line (its package exports only the library entry, which sits beside it).
const ava = join(dirname(createRequire(import.meta.url).resolve('ava')), 'cli.mjs');
const runs = [[], ['--config', 'ava.scale.config.js']];
let failed = 0;
for (const args of runs) {
  const r = spawnSync(process.execPath, [ava, ...args], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.error(`npm test: ava ${args.join(' ') || '(every test but the scale test)'} failed (${r.signal ?? `exit ${r.status}`})`);
  }
}
process.exit(failed > 0 ? 1 : 0);
