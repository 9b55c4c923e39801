/**
 * `stats.events` as a service: at start, the events of earlier runs are read back into the event log (before the
 * listeners open, so /api/events shows them from the first request), and every new event is appended to the file.
 */
import { errorMessage, LpxError } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import type { EventFileConfig, ProxyConfig } from '../../config/proxy-config.ts';
import type { AppService, PreparedReload, ProxyApp } from '../../proxy/app.ts';
import { EventFile } from '../../proxy/event-file.ts';

export class EventHistory implements AppService {
  readonly name = 'event-history';
  readonly stage = 'before-proxy' as const;
  readonly #log: Logger;
  #file: EventFile | null = null;
  #cfg: EventFileConfig | null = null;
  #unsubscribe: (() => void) | null = null;
  #app: ProxyApp | null = null;

  constructor(opts: { log: Logger }) {
    this.#log = opts.log.child({ component: 'events' });
  }

  async start(app: ProxyApp): Promise<void> {
    const cfg = app.config.stats?.events ?? null;
    this.#app = app;
    this.#unsubscribe = app.runtime.events.subscribe((e) => this.#file?.append(e));
    if (cfg === null) return;
    const file = this.#open(cfg);
    let loaded;
    try {
      loaded = file.load();
    } catch (err) {
      throw new LpxError('LPX_ERR_CONFIG', `stats.events.file ${cfg.file}: ${errorMessage(err)}`);
    }
    if (loaded.skipped > 0) this.#log.warn({ file: cfg.file, skipped: loaded.skipped }, 'event file: unreadable lines skipped (a crash mid-write leaves a partial last line)');
    app.runtime.events.restore(loaded.events);
    this.#file = file;
    this.#cfg = cfg;
    this.#app = app;
  }

  async prepareReload(config: ProxyConfig): Promise<PreparedReload | null> {
    const next = config.stats?.events ?? null;
    if (JSON.stringify(next) === JSON.stringify(this.#cfg)) return null;
    return {
      commit: () => {
        const old = this.#file;
        void old?.flush();
        this.#cfg = next;
        this.#file = null;
        if (next === null) return;
        // A moved or resized file starts from what the log holds now (the history so far is not lost).
        const file = this.#open(next);
        try {
          file.reset(this.#app?.runtime.eventList() ?? []);
          this.#file = file;
        } catch (err) {
          this.#log.error({ file: next.file, error: errorMessage(err) }, 'event file cannot be written: events are kept in memory only');
        }
      },
      abort: () => {},
    };
  }

  async stop(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    await this.#file?.flush();
  }

  #open(cfg: EventFileConfig): EventFile {
    return new EventFile(cfg.file, cfg.keep, (err) => this.#log.error({ file: cfg.file, error: errorMessage(err) }, 'event file write failed'));
  }
}
