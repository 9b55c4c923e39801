/** The compiled package under test: dist/ must exist and be newer than every source it is built from. */
import type { ExecutionContext } from 'ava';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO } from '../helpers/cli.ts';

export const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

function* tsFiles(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* tsFiles(p);
    else if (e.name.endsWith('.ts')) yield p;
  }
}

/**
 * Null when dist/ holds a build of every file of src/ at least as new as it; else why not (`npm test` builds
 * first; a test run on its own after a change to src/ needs `npm run build`).
 */
export function staleDist(): string | null {
  for (const src of tsFiles(join(REPO, 'src'))) {
    const rel = relative(join(REPO, 'src'), src);
    const out = join(REPO, 'dist', rel.replace(/\.ts$/, '.js'));
    if (!existsSync(out)) return `dist/${rel.replace(/\.ts$/, '.js')} is missing: run npm run build`;
    if (statSync(out).mtimeMs < statSync(src).mtimeMs) return `dist/ is older than src/${rel}: run npm run build`;
  }
  return null;
}

/** Fails the test at once (with the reason) when dist/ is not a build of the current sources. */
export function requireFreshDist(t: ExecutionContext): boolean {
  const why = staleDist();
  if (why !== null) t.fail(why);
  return why === null;
}
