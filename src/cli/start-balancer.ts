/**
 * Builds the balancer process shared by `licproxy run` and `licproxy demo`: the configuration, the logger, health
 * monitors, the licd daemons of `daemons:`, the stats server, and the signals (HUP reloads, TERM/INT stop).
 */
import { errorMessage } from '../common/errors.ts';
import { createLogger, type Logger } from '../common/logger.ts';
import type { ProxyConfig } from '../config/proxy-config.ts';
import { loadProxyConfig } from '../config/proxy-schema.ts';
import { createMonitorFactory } from '../health/health-monitor.ts';
import { ProxyApp, type AppService } from '../proxy/app.ts';
import { adoptInheritedSockets, describeInherited, findInheritedSocket } from '../proxy/inherited-sockets.ts';
import { ClusterPrimary } from '../proxy/cluster/primary.ts';
import { LicdDaemons } from './services/licd-daemons.ts';
import { StatsService } from './services/stats-service.ts';
import { AlertService } from '../alerts/alert-service.ts';
import { EventHistory } from './services/event-history.ts';

/** After the grace period, stop() closes what is left; this only guards against a hung shutdown. */
const EXIT_GUARD_MS = 5_000;

export interface BalancerOptions {
  file: string;
  pretty?: boolean;
  /** Log level of the licd children (default: the balancer's). */
  daemonLogLevel?: string;
  /** Called once every service runs, before signals are installed. */
  onReady?: (ctx: RunningBalancer) => void;
}

export interface RunningBalancer {
  app: ProxyApp;
  config: ProxyConfig;
  log: Logger;
  daemons: LicdDaemons | null;
  stats: StatsService;
  cluster: ClusterPrimary | null;
}

export async function startBalancer(opts: BalancerOptions): Promise<RunningBalancer> {
  // Validate before logging starts: a bad file is only its error lines on stderr and exit 1.
  const config = loadProxyConfig(opts.file);
  // Batched log writes (a line per connection at thousands a second): lines leave within 100 ms and at exit.
  const log = createLogger({
    level: config.global.logLevel,
    pretty: opts.pretty ?? false,
    name: 'licproxy',
    flushMs: 100,
    sharedStdout: config.global.workers > 1,
  });
  logInheritedSockets(config, log);
  const daemons = config.daemons.length
    ? new LicdDaemons(config.daemons, { log, childLogLevel: opts.daemonLogLevel ?? config.global.logLevel })
    : null;
  // More than one worker: this process is the cluster primary (checks, affinity, stats); the workers forward.
  const cluster = config.global.workers > 1 ? new ClusterPrimary({ workers: config.global.workers, log, pretty: opts.pretty ?? false }) : null;
  // Alerts and the event file run here, in the one process that holds the event log (the primary with workers).
  const alerts = new AlertService({ log });
  const history = new EventHistory({ log });
  const stats = new StatsService({ log, provider: cluster, alerts });
  // `cluster:` (SPEC 9): state shared with the other instances through Redis; in the primary when there are workers.
  // Loaded only then: a balancer without `cluster:` never loads the Redis client.
  const shared = config.cluster ? new (await import('../proxy/cluster-state/cluster-state.ts')).ClusterState(config.cluster, log) : null;
  // Stopped in reverse: the workers' grace period passes while the stats endpoint still answers.
  const services: AppService[] = [history, alerts, ...(daemons ? [daemons] : []), ...(shared ? [shared] : []), stats, ...(cluster ? [cluster] : [])];
  const app = await ProxyApp.start({
    config,
    log,
    monitorFactory: createMonitorFactory({ logger: log }),
    services,
    cluster: shared,
    runtime: {
      ...(cluster ? { listen: false, onServerChange: cluster.serverChanged } : {}),
      ...(shared ? { affinityFactory: shared.affinityFactory } : {}),
    },
  });
  log.info({ file: opts.file, frontends: config.frontends.length, pools: config.pools.length, workers: config.global.workers }, 'licproxy running');
  const running = { app, config, log, daemons, stats, cluster };
  opts.onReady?.(running);
  installSignals(app);
  return running;
}

/** Socket activation (systemd/licproxy.socket): which passed socket serves which frontend, and what serves none. */
function logInheritedSockets(config: ProxyConfig, log: Logger): void {
  const { sockets, problems } = adoptInheritedSockets();
  for (const p of problems) log.warn(`socket activation: ${p}`);
  for (const s of sockets) {
    const fe = config.frontends.find((f) => findInheritedSocket(f.listen) === s);
    if (fe) log.info({ fd: s.fd, frontend: fe.name }, `socket activation: ${describeInherited(s)} serves frontend ${fe.name}`);
    else log.warn({ fd: s.fd }, `socket activation: ${describeInherited(s)} matches no frontend's listen address: unused`);
  }
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
