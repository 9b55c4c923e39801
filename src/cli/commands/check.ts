import type { Command } from 'commander';
import { ConfigError, formatIssue } from '../../common/errors.ts';
import { printable } from '../../common/printable.ts';
import { loadProxyConfigOffThread } from '../../config/off-thread.ts';
import { DEFAULT_CONFIG_FILE } from '../../config/proxy-schema.ts';
import { EXIT_USAGE } from '../run-cli.ts';

/** `licproxy check`: like `haproxy -c` / `nginx -t`, every error at once, exit 1 when any. */
export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('validate a configuration file: prints "configuration is valid", or every error with file:line:column and YAML path')
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG_FILE)
    .action(async (opts: { config: string }) => {
      try {
        // On a worker with a heap limit and a deadline, as a reload reads it: a hostile file is one line, not a crash.
        const config = await loadProxyConfigOffThread(opts.config);
        for (const w of config.warnings ?? []) process.stderr.write(`warning: ${formatIssue(w)}\n`);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        for (const issue of err.issues) process.stderr.write(`${formatIssue(issue)}\n`);
        const n = err.issues.length;
        process.stderr.write(`${printable(opts.config)}: ${n} error${n === 1 ? '' : 's'}, configuration is not valid\n`);
        process.exitCode = EXIT_USAGE;
        return;
      }
      process.stdout.write('configuration is valid\n');
    });
}
