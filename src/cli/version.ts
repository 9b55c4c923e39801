import { createRequire } from 'node:module';

/**
 * The package version, read at run time from package.json, the one place it is written: the same relative path
 * from src/cli (run through tsx) and from dist/cli (compiled).
 */
export const VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
