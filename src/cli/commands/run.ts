import type { Command } from 'commander';
import { errorMessage } from '../../common/errors.ts';
import { createLogger } from '../../common/logger.ts';
import { DEFAULT_CONFIG_FILE, loadProxyConfig } from '../../config/proxy-schema.ts';
import { createMonitorFactory } from '../../health/health-monitor.ts';
import { ProxyApp } from '../../proxy/app.ts';

interface RunOptions {
  config: string;
  pretty?: boolean;
}

/** After the grace period, stop() closes what is left; this only guards against a hung shutdown. */
const EXIT_GUARD_MS = 5_000;

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run the balancer (SIGHUP reloads the file, SIGTERM stops gracefully)')
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG_FILE)
    .option('--pretty', 'human-readable logs (pino-pretty) instead of JSON lines')
    .action(async (opts: RunOptions) => {
      // Validate before logging starts: a bad file is only its error lines on stderr and exit 1.
      const config = loadProxyConfig(opts.config);
      const log = createLogger({ level: config.global.logLevel, pretty: opts.pretty ?? false, name: 'licproxy' });
      const app = await ProxyApp.start({ config, log, monitorFactory: createMonitorFactory({ logger: log }) });
      log.info({ file: opts.config, frontends: config.frontends.length, pools: config.pools.length }, 'licproxy running');
      installSignals(app);
    });
}

function installSignals(app: ProxyApp): void {
  const log = app.log;
  process.on('SIGHUP', () => {
    log.info('SIGHUP: reloading the configuration');
    void app.reload();
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    const grace = app.config.global.grace;
    log.info({ signal, graceMs: grace }, `${signal}: stopping`);
    setTimeout(() => process.exit(0), grace + EXIT_GUARD_MS).unref();
    app.stop(grace).then(
      () => log.flush(() => process.exit(0)),
      (err: unknown) => {
        log.error({ error: errorMessage(err) }, 'shutdown failed');
        process.exit(2);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
