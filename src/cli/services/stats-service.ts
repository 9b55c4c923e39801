/**
 * The stats endpoint as a service of the balancer process: runs the stats listener while the configuration has a
 * `stats:` section, and follows reloads of that section. What it shows comes from RuntimeStatsSource.
 */
import { readFileSync } from 'node:fs';
import { formatHostPort, type HostPort } from '../../common/address.ts';
import { errorMessage, LpxError } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import type { ProxyConfig, StatsConfig } from '../../config/proxy-config.ts';
import type { AppService, PreparedReload, ProxyApp } from '../../proxy/app.ts';
import { RuntimeStatsSource, type SnapshotProvider } from '../../stats/runtime-stats-source.ts';
import { StatsServer } from '../../stats/stats-server.ts';
import type { AlertDeliveryStats } from '../../stats/snapshot.ts';
import { adminTokenProblem } from '../../stats/admin-token.ts';
import { isLoopback } from '../../config/proxy-schema.ts';
import { UsageRecorder } from '../../stats/history/usage-recorder.ts';

/**
 * Test hook: the usage history's bucket length in ms instead of an hour, so a test of a child `licproxy run` sees
 * hours close in milliseconds. Not an operator setting (the files then carry the length in their names).
 */
const TEST_BUCKET_ENV = 'LICPROXY_TEST_HISTORY_BUCKET_MS';

function readToken(stats: StatsConfig): string | null {
  if (!stats.admin) return null;
  let content: string;
  try {
    content = readFileSync(stats.admin.tokenFile, 'utf8');
  } catch (err) {
    throw new LpxError('LPX_ERR_CONFIG_READ', `stats.admin.token_file ${stats.admin.tokenFile}: ${errorMessage(err)}`);
  }
  // Checked again here: the file may have changed since the configuration was validated.
  const problem = adminTokenProblem(content);
  if (problem) throw new LpxError('LPX_ERR_CONFIG', `stats.admin.token_file ${stats.admin.tokenFile} ${problem}`);
  return content.trim();
}

/** Runs the stats server while the configuration has a `stats:` section; restarts it when that section changes. */
export class StatsService implements AppService {
  readonly name = 'stats';
  readonly stage = 'after-proxy' as const;
  readonly #log: Logger;
  readonly #provider: SnapshotProvider | null;
  readonly #alerts: { stats(): AlertDeliveryStats[] } | null;
  #app: ProxyApp | null = null;
  #server: StatsServer | null = null;
  #current: string | null = null;
  /** `stats.listen` as configured for the running listener. */
  #listen: HostPort | null = null;
  /** `stats.history`'s recorder and the configuration it runs with. */
  #history: UsageRecorder | null = null;
  #historyKey: string | null = null;
  readonly #historyBucketMs: number | undefined;

  constructor(opts: { log: Logger; provider?: SnapshotProvider | null; historyBucketMs?: number; alerts?: { stats(): AlertDeliveryStats[] } | null }) {
    this.#log = opts.log.child({ component: 'stats' });
    this.#provider = opts.provider ?? null;
    this.#alerts = opts.alerts ?? null;
    const env = Number(process.env[TEST_BUCKET_ENV]);
    this.#historyBucketMs = opts.historyBucketMs ?? (Number.isSafeInteger(env) && env > 0 ? env : undefined);
  }

  /** The usage recorder while `stats.history` is set. */
  get history(): UsageRecorder | null {
    return this.#history;
  }

  /** A new recorder when `stats.history` changed (undefined: unchanged), and how to switch to it. */
  #prepareHistory(stats: StatsConfig | null): { next: UsageRecorder | null | undefined; commit: () => void; abort: () => void } {
    const h = stats?.history ?? null;
    const key = h ? JSON.stringify(h) : null;
    if (key === this.#historyKey) return { next: undefined, commit: () => {}, abort: () => {} };
    let next: UsageRecorder | null = null;
    if (h) {
      try {
        next = new UsageRecorder({ dir: h.dir, keepMs: h.keep, logger: this.#log, ...(this.#historyBucketMs ? { bucketMs: this.#historyBucketMs } : {}) });
      } catch (err) {
        throw new LpxError('LPX_ERR_CONFIG', `stats.history.dir ${h.dir}: ${errorMessage(err)}`);
      }
    }
    return {
      next,
      commit: () => {
        const old = this.#history;
        this.#history = next;
        this.#historyKey = key;
        next?.start(new RuntimeStatsSource(this.#app!, this.#provider));
        void old?.stop().catch((err: unknown) => this.#log.error({ error: errorMessage(err) }, 'stopping the usage recorder failed'));
      },
      abort: () => {},
    };
  }

  /** The address the stats server listens on (port 0 resolved), or null without a `stats:` section. */
  get address(): { host: string; port: number } | null {
    return this.#server?.address ?? null;
  }

  async start(app: ProxyApp): Promise<void> {
    this.#app = app;
    const p = await this.prepareReload(app.config);
    p?.commit();
  }

  /**
   * A reload's first half: a moved `stats.listen` is bound now, beside the running listener, so a port in use fails
   * the whole reload and the running endpoint goes on answering. The switch happens at commit; the old listener
   * then finishes its in-flight requests (the `POST /api/reload` that asked for this one among them).
   */
  async prepareReload(config: ProxyConfig): Promise<PreparedReload | null> {
    const stats = config.stats;
    const token = stats ? readToken(stats) : null;
    const key = stats ? JSON.stringify({ ...stats, token }) : null;
    if (key === this.#current) return null;
    const history = this.#prepareHistory(stats);
    const old = this.#server;
    const retire = (): void => {
      void old?.stop().catch((err: unknown) => this.#log.error({ error: errorMessage(err) }, 'stopping the old stats listener failed'));
    };
    if (!stats) {
      return {
        commit: () => {
          this.#server = null;
          this.#current = null;
          this.#listen = null;
          history.commit();
          retire();
        },
        abort: () => {},
      };
    }
    if (old !== null && this.#listen !== null && sameHostPort(this.#listen, stats.listen)) {
      return {
        commit: () => {
          history.commit();
          old.configure({ refreshMs: stats.refresh, adminToken: token, history: this.#history });
          this.#current = key;
        },
        abort: () => {},
      };
    }
    const server = new StatsServer({
      host: stats.listen.host,
      port: stats.listen.port,
      source: new RuntimeStatsSource(this.#app!, this.#provider, this.#alerts),
      refreshMs: stats.refresh,
      adminToken: token,
      logger: this.#log,
      history: history.next === undefined ? this.#history : history.next,
    });
    try {
      await server.start();
    } catch (err) {
      throw new LpxError('LPX_ERR_LISTEN', `stats.listen ${formatHostPort(stats.listen)}: ${errorMessage(err)}`);
    }
    return {
      commit: () => {
        history.commit();
        this.#server = server;
        this.#current = key;
        this.#listen = stats.listen;
        retire();
        if (stats.admin?.insecure && !isLoopback(stats.listen.host)) {
          this.#log.warn({ listen: formatHostPort(stats.listen) }, 'stats.admin.insecure: the admin bearer token crosses the network in clear text (plain HTTP on a non-loopback address)');
        }
      },
      abort: () => server.stop(),
    };
  }

  async stop(): Promise<void> {
    await this.#server?.stop();
    // A graceful stop writes the hour in progress: a restart keeps it.
    await this.#history?.stop();
    this.#history = null;
    this.#historyKey = null;
    this.#server = null;
    this.#current = null;
    this.#listen = null;
  }
}

function sameHostPort(a: HostPort, b: HostPort): boolean {
  return a.host === b.host && a.port === b.port;
}
