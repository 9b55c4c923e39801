import { Command, Option } from 'commander';
import { createLogger, type Logger } from '../common/logger.ts';
import { errorMessage } from '../common/errors.ts';
import { loadLicdConfig } from '../config/licd-config.ts';
import { LicenseServer } from '../licd/license-server.ts';
import { runCli } from './run-cli.ts';
import { VERSION } from './version.ts';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** After SIGTERM, stop() cuts clients that do not read within 1s; this only guards against a hung shutdown. */
const EXIT_GUARD_MS = 5_000;

interface LicdOptions {
  config: string;
  pretty?: boolean;
  logLevel: (typeof LEVELS)[number];
}

const program = new Command('licd')
  .description('licd, the reference license daemon (license port, token port, lmstat-style STATUS)')
  .version(VERSION)
  .option('-c, --config <file>', 'license file (YAML)', 'conf/licd/primary.yaml')
  .option('--pretty', 'human-readable logs (pino-pretty) instead of JSON lines')
  .addOption(new Option('--log-level <level>', 'log level').choices(LEVELS).default('info'))
  .showHelpAfterError('(run with --help for usage)')
  .action(async (opts: LicdOptions) => {
    // Validate before logging starts, so a bad file is only its error lines on stderr and exit 1.
    const config = loadLicdConfig(opts.config);
    const logger = createLogger({ level: opts.logLevel, pretty: opts.pretty ?? false, name: 'licd' });
    const server = new LicenseServer(config, { logger });
    const ports = await server.start();
    // Port 0 binds a free port the system picks: handy for tests and demos, but no client can know it unless told.
    for (const key of ['license', 'tokens', 'peer'] as const) {
      if (config.server.ports[key] !== 0) continue;
      const port = ports[key];
      if (port === undefined) continue;
      logger.warn({ key: `server.ports.${key}`, port }, `server.ports.${key}: 0 in ${opts.config}: listening on the free port ${port} the system picked`);
    }
    installSignals(server, opts.config, logger);
    // A supervising balancer (`daemons:`) waits for this rather than probing ports another process may hold.
    if (process.send) {
      process.send({ type: 'licd-ready', name: config.server.name, ports });
      process.channel?.unref();
    }
  });

function installSignals(server: LicenseServer, file: string, logger: Logger): void {
  process.on('SIGHUP', () => {
    try {
      server.reload(loadLicdConfig(file));
    } catch (err) {
      // The running license file stays in force; every error line is logged.
      logger.error({ event: 'reload-failed', file, error: errorMessage(err) }, `reload failed, keeping the running license file: ${errorMessage(err)}`);
    }
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ event: 'shutdown', signal }, `${signal}: shutting down`);
    setTimeout(() => process.exit(0), EXIT_GUARD_MS).unref();
    server.stop().then(
      () => logger.flush(() => process.exit(0)),
      (err) => {
        logger.error({ error: errorMessage(err) }, 'shutdown failed');
        process.exit(2);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

await runCli(program);
