/**
 * The suite runs from a clone alone: nothing under src/, test/ or bench/ reads the `shared` folder that sits beside
 * the repository on the developers' machines (a fresh clone has no such folder; its fixtures are in test/fixtures/).
 */
import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO } from '../helpers/cli.ts';

/** The sibling folder's name, spelled in two halves so that this file does not match its own pattern. */
const SIBLING = 'sha' + 'red';
/** A path that leaves the repository for the sibling folder, or names that folder's fixtures. */
const OUTSIDE = new RegExp([`\\.\\./${SIBLING}\\b`, `\\b${SIBLING}/fixtures\\b`, `/work/${SIBLING}\\b`].join('|'));

const SCANNED = ['src', 'test', 'bench'];
/** What can read a file at run time (the fixtures' README may say where they came from). */
const TEXT = /\.(ts|js|mjs|cjs|json|sh|ya?ml)$/;

function* files(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) yield* files(path);
    else if (e.isFile() && TEXT.test(e.name)) yield path;
  }
}

test('the pattern catches the ways the suite used to reach outside the repository', (t) => {
  t.regex(`new URL('../../../${SIBLING}/fixtures/lmstat/', import.meta.url)`, OUTSIDE);
  t.regex(`for dir in "$here/../../../${SIBLING}/fixtures/lmstat" "$here/lmstat"; do`, OUTSIDE);
  t.regex(`readFileSync('/work/${SIBLING}/SPEC.md')`, OUTSIDE);
  t.notRegex(`const sharedReadBuffer = SHARED; // the shared buffer`, OUTSIDE);
});

test('nothing under src/, test/ or bench/ reads the shared folder beside the repository', (t) => {
  const offenders: string[] = [];
  let scanned = 0;
  for (const top of SCANNED) {
    for (const path of files(join(REPO, top))) {
      scanned++;
      readFileSync(path, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (OUTSIDE.test(line)) offenders.push(`${relative(REPO, path)}:${i + 1}: ${line.trim()}`);
        });
    }
  }
  t.true(scanned > 100, `scanned ${scanned} files`);
  t.deepEqual(offenders, []);
});
