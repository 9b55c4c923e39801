/**
 * The balancer process as one object: configuration file, logger, the ProxyRuntime, and the services that live
 * beside it (the stats HTTP server, in-process licd daemons). `licproxy run` builds one; SIGHUP and
 * `POST /api/reload` both call `reload()`, SIGTERM calls `stop()`.
 */
import { ConfigError, errorMessage, formatIssue } from '../common/errors.ts';
import type { Logger } from '../common/logger.ts';
import type { ProxyConfig } from '../config/proxy-config.ts';
import { loadProxyConfigOffThread } from '../config/off-thread.ts';
import type { MonitorFactory } from './pool.ts';
import { ProxyRuntime, type ApplySummary, type RuntimeOptions } from './runtime.ts';

/** Something that runs beside the balancer and follows its life cycle. */
export interface AppService {
  readonly name: string;
  /** `before-proxy` services start before the listeners open (in-process licd, so first checks find it). */
  readonly stage: 'before-proxy' | 'after-proxy';
  start(app: ProxyApp): Promise<void>;
  /** Called with a valid configuration before the runtime applies it; throwing fails the reload (nothing applied). */
  prepareReload?(config: ProxyConfig): Promise<void>;
  /** Called after a valid reload was applied. */
  reload?(config: ProxyConfig): Promise<void>;
  stop(): Promise<void>;
}

export interface AppOptions {
  config: ProxyConfig;
  log: Logger;
  monitorFactory?: MonitorFactory;
  services?: AppService[];
  /** More runtime options (a cluster primary's runtime does not listen and reports server changes). */
  runtime?: Omit<RuntimeOptions, 'log' | 'monitorFactory'>;
}

export type ReloadResult = { ok: true; summary: ApplySummary } | { ok: false; errors: string[] };

export class ProxyApp {
  readonly log: Logger;
  readonly runtime: ProxyRuntime;
  readonly #services: AppService[];
  #reloading: Promise<ReloadResult> | null = null;
  #stopping: Promise<void> | null = null;

  private constructor(opts: AppOptions) {
    this.log = opts.log;
    this.#services = opts.services ?? [];
    this.runtime = new ProxyRuntime(opts.config, {
      ...opts.runtime,
      log: opts.log,
      ...(opts.monitorFactory ? { monitorFactory: opts.monitorFactory } : {}),
    });
  }

  get config(): ProxyConfig {
    return this.runtime.config;
  }

  static async start(opts: AppOptions): Promise<ProxyApp> {
    const app = new ProxyApp(opts);
    const started: AppService[] = [];
    try {
      for (const s of app.#services.filter((x) => x.stage === 'before-proxy')) {
        await s.start(app);
        started.push(s);
      }
      await app.runtime.start();
      for (const s of app.#services.filter((x) => x.stage === 'after-proxy')) {
        await s.start(app);
        started.push(s);
      }
    } catch (err) {
      await app.runtime.stop(0);
      for (const s of started.reverse()) await s.stop().catch(() => {});
      throw err;
    }
    return app;
  }

  /**
   * Re-reads the configuration file. Invalid (or a listener that cannot open): the running configuration stays
   * and every error line is logged and returned. Reloads are serialised: one that arrives during another waits.
   */
  reload(): Promise<ReloadResult> {
    const prev = this.#reloading ?? Promise.resolve(null);
    const next = prev.then(() => this.#reload());
    this.#reloading = next;
    void next.finally(() => {
      if (this.#reloading === next) this.#reloading = null;
    });
    return next;
  }

  async #reload(): Promise<ReloadResult> {
    const file = this.runtime.config.file;
    if (this.#stopping) return { ok: false, errors: ['the balancer is stopping'] };
    let config: ProxyConfig;
    try {
      // Off this thread: a slow or huge file must not stall forwarding, heartbeats and /health.
      config = await loadProxyConfigOffThread(file);
    } catch (err) {
      return this.#reloadFailed(file, err);
    }
    try {
      const before = this.runtime.config.global;
      for (const s of this.#services) await s.prepareReload?.(config);
      const summary = await this.runtime.apply(config);
      if (config.global.workers !== before.workers || config.global.workerAccept !== before.workerAccept) {
        this.log.warn(
          { running: [before.workers, before.workerAccept], file: [config.global.workers, config.global.workerAccept] },
          'global.workers or global.worker_accept changed: applies at the next start',
        );
      }
      this.log.level = config.global.logLevel;
      for (const s of this.#services) await s.reload?.(config);
      return { ok: true, summary };
    } catch (err) {
      return this.#reloadFailed(file, err);
    }
  }

  #reloadFailed(file: string, err: unknown): ReloadResult {
    const errors = err instanceof ConfigError ? err.issues.map(formatIssue) : [errorMessage(err)];
    this.log.error({ file, errors: errors.length }, 'reload failed: keeping the running configuration');
    this.runtime.events.add({ kind: 'reload', reason: `reload failed, running configuration kept: ${errors[0] ?? 'error'}${errors.length > 1 ? ` (+${errors.length - 1} more)` : ''}` });
    for (const e of errors) this.log.error({ file }, e);
    return { ok: false, errors };
  }

  /**
   * Stops accepting, waits up to `graceMs` (default `global.grace`) for connections, then stops the services
   * (the stats server keeps answering during the grace period).
   */
  stop(graceMs = this.runtime.config.global.grace): Promise<void> {
    this.#stopping ??= (async () => {
      await this.runtime.stop(graceMs);
      for (const s of [...this.#services].reverse()) {
        await s.stop().catch((err: unknown) => this.log.error({ service: s.name, error: errorMessage(err) }, 'service stop failed'));
      }
    })();
    return this.#stopping;
  }
}
