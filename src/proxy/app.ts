/**
 * The balancer process as one object: configuration file, logger, the ProxyRuntime, and the services that live
 * beside it (the stats HTTP server, in-process licd daemons). `licproxy run` builds one; SIGHUP and
 * `POST /api/reload` both call `reload()`, SIGTERM calls `stop()`.
 */
import { ConfigError, errorMessage, formatIssue } from '../common/errors.ts';
import type { Logger } from '../common/logger.ts';
import type { ProxyConfig } from '../config/proxy-config.ts';
import { loadProxyConfigOffThread } from '../config/off-thread.ts';
import type { ClusterView } from './cluster-state/cluster-view.ts';
import type { MonitorFactory } from './pool.ts';
import { ProxyRuntime, type ApplySummary, type PreparedApply, type RuntimeOptions } from './runtime.ts';

/** Something that runs beside the balancer and follows its life cycle. */
export interface AppService {
  readonly name: string;
  /** `before-proxy` services start before the listeners open (in-process licd, so first checks find it). */
  readonly stage: 'before-proxy' | 'after-proxy';
  start(app: ProxyApp): Promise<void>;
  /**
   * The fallible half of a reload (bind a new listener, validate a file): nothing visible changes yet. Throwing fails
   * the reload, and every service prepared before is aborted. Null: nothing to change.
   */
  prepareReload?(config: ProxyConfig): Promise<PreparedReload | null>;
  stop(): Promise<void>;
}

/** A service's reload, ready: `commit` switches it in and cannot fail; `abort` undoes what `prepareReload` opened. */
export interface PreparedReload {
  commit(): void;
  abort(): void | Promise<void>;
}

export interface AppOptions {
  config: ProxyConfig;
  log: Logger;
  monitorFactory?: MonitorFactory;
  services?: AppService[];
  /** Instances sharing state through Redis (SPEC 9): what the stats and admin API see of it. */
  cluster?: ClusterView | null;
  /** More runtime options (a cluster primary's runtime does not listen and reports server changes). */
  runtime?: Omit<RuntimeOptions, 'log' | 'monitorFactory'>;
}

export type ReloadResult = { ok: true; summary: ApplySummary } | { ok: false; errors: string[] };

/** What /stats and /metrics show of the reloads (a plain object the app updates in place). */
export interface ReloadRecord {
  ok: number;
  failed: number;
  /** Date.now() of the last configuration applied; the start counts. */
  lastSuccessAt: number;
  last: { at: number; ok: boolean; error: string | null } | null;
}

export class ProxyApp {
  readonly log: Logger;
  readonly runtime: ProxyRuntime;
  /** Null without `cluster:` (this balancer runs alone). */
  readonly cluster: ClusterView | null;
  /** Date.now() at start (a stats listener moved by a reload keeps showing the process's uptime). */
  readonly startedAt = Date.now();
  readonly reloads: ReloadRecord = { ok: 0, failed: 0, lastSuccessAt: this.startedAt, last: null };
  readonly #services: AppService[];
  #reloading: Promise<ReloadResult> | null = null;
  #stopping: Promise<void> | null = null;

  private constructor(opts: AppOptions) {
    this.log = opts.log;
    this.#services = opts.services ?? [];
    this.cluster = opts.cluster ?? null;
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
    // All or nothing across the runtime and every service: each prepares what can fail (listeners bound, files
    // read) without changing what runs; only when every one is ready do they all commit, synchronously. A failure
    // aborts what was prepared, so the running configuration, listeners and stats endpoint stay as they were.
    const prepared: PreparedReload[] = [];
    let runtime: PreparedApply;
    try {
      runtime = await this.runtime.prepare(config);
      prepared.push(runtime);
      for (const s of this.#services) {
        const p = await s.prepareReload?.(config);
        if (p) prepared.push(p);
      }
    } catch (err) {
      for (const p of prepared.reverse()) await Promise.resolve(p.abort()).catch((e: unknown) => this.log.error({ error: errorMessage(e) }, 'reload abort failed'));
      return this.#reloadFailed(file, err);
    }
    const before = this.runtime.config.global;
    const summary = runtime.commit();
    for (const p of prepared.slice(1)) p.commit();
    if (config.global.workers !== before.workers || config.global.workerAccept !== before.workerAccept) {
      this.log.warn(
        { running: [before.workers, before.workerAccept], file: [config.global.workers, config.global.workerAccept] },
        'global.workers or global.worker_accept changed: applies at the next start',
      );
    }
    // A logger made silent by its owner (tests, library use) stays silent.
    if (this.log.level !== 'silent') this.log.level = config.global.logLevel;
    const at = Date.now();
    this.reloads.ok++;
    this.reloads.lastSuccessAt = at;
    this.reloads.last = { at, ok: true, error: null };
    return { ok: true, summary };
  }

  #reloadFailed(file: string, err: unknown): ReloadResult {
    const errors = err instanceof ConfigError ? err.issues.map(formatIssue) : [errorMessage(err)];
    this.log.error({ file, errors: errors.length }, 'reload failed: keeping the running configuration');
    this.runtime.events.add({ kind: 'reload', reason: `reload failed, running configuration kept: ${errors[0] ?? 'error'}${errors.length > 1 ? ` (+${errors.length - 1} more)` : ''}` });
    for (const e of errors) this.log.error({ file }, e);
    this.reloads.failed++;
    this.reloads.last = { at: Date.now(), ok: false, error: errors[0] ?? 'error' };
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
