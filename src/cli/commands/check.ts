import type { Command } from 'commander';
import { ConfigError, formatIssue } from '../../common/errors.ts';
import { DEFAULT_CONFIG_FILE, loadProxyConfig } from '../../config/proxy-schema.ts';
import { EXIT_USAGE } from '../run-cli.ts';

/** `licproxy check`: like `haproxy -c` / `nginx -t`, every error at once, exit 1 when any. */
export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('validate a configuration file: prints "configuration is valid", or every error with file:line:column and YAML path')
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG_FILE)
    .action((opts: { config: string }) => {
      try {
        const config = loadProxyConfig(opts.config);
        for (const w of config.warnings ?? []) process.stderr.write(`warning: ${formatIssue(w)}\n`);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        for (const issue of err.issues) process.stderr.write(`${formatIssue(issue)}\n`);
        const n = err.issues.length;
        process.stderr.write(`${opts.config}: ${n} error${n === 1 ? '' : 's'}, configuration is not valid\n`);
        process.exitCode = EXIT_USAGE;
        return;
      }
      process.stdout.write('configuration is valid\n');
    });
}
