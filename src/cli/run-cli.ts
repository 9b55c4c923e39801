import { Command, CommanderError } from 'commander';
import { ConfigError, LpxError, errorMessage } from '../common/errors.ts';
import { printable } from '../common/printable.ts';

/** Exit codes of both executables (SPEC 5). */
export const EXIT_OK = 0;
export const EXIT_USAGE = 1;
export const EXIT_RUNTIME = 2;

/**
 * Runs a commander program so that every failure is one line on stderr and an exit code, never a stack:
 * usage and configuration errors exit 1, runtime failures exit 2.
 */
export async function runCli(program: Command, argv = process.argv): Promise<void> {
  program.exitOverride();
  program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  for (const c of program.commands) c.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    process.exitCode = exitCodeFor(err);
    if (err instanceof CommanderError) return; // commander already printed its message or the help text
    // A configuration error is a line per issue (each already printable); any other failure is one line,
    // whatever its message quotes (a file name, a value): line breaks and raw control bytes are escaped.
    const text = err instanceof ConfigError ? err.message : printable(errorMessage(err));
    process.stderr.write(`${program.name()}: ${text}\n`);
  }
}

function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  if (err instanceof LpxError) {
    return err.code === 'LPX_ERR_CONFIG' || err.code === 'LPX_ERR_CONFIG_READ' || err.code === 'LPX_ERR_USAGE'
      ? EXIT_USAGE
      : EXIT_RUNTIME;
  }
  return EXIT_RUNTIME;
}

/** Parses a positive whole-number CLI option, failing as a usage error naming the option. */
export function intOption(name: string, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) {
      throw new LpxError('LPX_ERR_USAGE', `${name} must be a whole number ${min}..${max}, got "${value}"`);
    }
    return n;
  };
}
