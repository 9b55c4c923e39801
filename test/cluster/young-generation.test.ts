/**
 * Workers start with a 1 MiB young generation unless the operator chose a size (primary.ts youngGenerationArgs);
 * the systemd unit gives the primary the same through NODE_OPTIONS.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { youngGenerationArgs } from '../../src/proxy/cluster/primary.ts';
import { REPO } from '../helpers/cli.ts';

test('workers get --max-semi-space-size=1 unless execArgv or NODE_OPTIONS already set a semi-space size', (t) => {
  t.deepEqual(youngGenerationArgs([], undefined), ['--max-semi-space-size=1']);
  t.deepEqual(youngGenerationArgs(['--enable-source-maps'], '--max-old-space-size=4096'), ['--max-semi-space-size=1']);
  t.deepEqual(youngGenerationArgs(['--max-semi-space-size=16'], undefined), []);
  t.deepEqual(youngGenerationArgs([], '--max-old-space-size=4096 --max-semi-space-size=8'), []);
  t.deepEqual(youngGenerationArgs(['--min-semi-space-size=4'], undefined), [], 'any semi-space choice is the operator\'s');
});

test('licproxy.service gives the primary the same young generation', (t) => {
  const unit = readFileSync(join(REPO, 'systemd', 'licproxy.service'), 'utf8');
  t.regex(unit, /^Environment=NODE_OPTIONS=--max-semi-space-size=1$/m);
});
