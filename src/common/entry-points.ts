/**
 * The programs this package starts as child processes of its own (licd for a balancer's `daemons:`, the cluster's
 * worker). Compiled (dist/), they are the compiled files beside this one. Run from the TypeScript sources (tests,
 * development), they are the sources, loaded through tsx, so a change needs no build to reach the children and
 * an installed package never needs tsx.
 */
import { fileURLToPath } from 'node:url';

const FROM_SOURCES = import.meta.url.endsWith('.ts');

export type EntryPoint = 'cli/licd' | 'proxy/cluster/worker-main';

/** The file that runs `entry`. */
export function entryFile(entry: EntryPoint): string {
  return fileURLToPath(new URL(`../${entry}${FROM_SOURCES ? '.ts' : '.js'}`, import.meta.url));
}

/**
 * Node options the entry files need on top of `inherited` (a child's execArgv): the tsx loader when running from
 * the sources and it is not already there.
 */
export function loaderArgs(inherited: readonly string[] = []): string[] {
  if (!FROM_SOURCES || inherited.some((a) => a.includes('tsx'))) return [];
  return ['--import', import.meta.resolve('tsx')];
}

/** `node` arguments that run `entry`, before the entry's own arguments. */
export function entryArgs(entry: EntryPoint): string[] {
  return [...loaderArgs(), entryFile(entry)];
}
