import type { Command } from 'commander';
import { DEFAULT_CONFIG_FILE } from '../../config/proxy-schema.ts';
import { startBalancer } from '../start-balancer.ts';

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run the balancer (SIGHUP reloads the file, SIGTERM/SIGINT stop gracefully)')
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG_FILE)
    .option('--pretty', 'human-readable logs (pino-pretty) instead of JSON lines')
    .action(async (opts: { config: string; pretty?: boolean }) => {
      await startBalancer({ file: opts.config, ...(opts.pretty ? { pretty: true } : {}) });
    });
}
