import { fileURLToPath } from 'node:url';

/** The repository root (where `--import tsx` resolves and where bin/ lives). */
export const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** argv to run a TypeScript file of this repo in a fresh node with tsx. */
export function tsArgs(file: string, args: readonly string[] = []): string[] {
  return ['--import', 'tsx', fileURLToPath(new URL(`../../${file}`, import.meta.url)), ...args];
}
