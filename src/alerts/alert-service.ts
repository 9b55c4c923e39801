/**
 * SPEC 10 `alerts:` as a service of the balancer process. It subscribes to the event log (event-log.ts), turns
 * events into alert messages (event-matcher.ts), gates them per alert by `min_interval` (interval-gate.ts) and
 * queues them for delivery (webhook-sender.ts); `feature_above` comes from the lmstat check results
 * (feature-watch.ts). Every step only queues: a failing or hanging webhook never reaches forwarding.
 *
 * With `global.workers` > 1 only the primary runs it (workers never build services), so each event is sent once.
 */
import type { Logger } from '../common/logger.ts';
import type { AlertConfig, ProxyConfig } from '../config/proxy-config.ts';
import type { AppService, PreparedReload, ProxyApp } from '../proxy/app.ts';
import type { ProxyEvent } from '../proxy/event-log.ts';
import type { AlertMessage } from './alert-message.ts';
import { EventMatcher } from './event-matcher.ts';
import { FEATURE_POLL_MS, featureUse, ThresholdCrossing } from './feature-watch.ts';
import { formatMessage } from './format-message.ts';
import { IntervalGate } from './interval-gate.ts';
import { WebhookSender, type AlertCounters } from './webhook-sender.ts';

/** Delivery counters per alert, for /metrics and /stats.json. */
export interface AlertStats {
  name: string;
  ok: number;
  failed: number;
  dropped: number;
  queued: number;
}

/** One configured alert, running. */
class ActiveAlert {
  readonly cfg: AlertConfig;
  readonly key: string;
  readonly sender: WebhookSender;
  readonly gate: IntervalGate;
  readonly features: ThresholdCrossing | null;

  constructor(cfg: AlertConfig, log: Logger, counters: AlertCounters, backoffBaseMs: number | undefined) {
    this.cfg = cfg;
    this.key = JSON.stringify(cfg);
    this.sender = new WebhookSender(cfg, { log, counters, ...(backoffBaseMs !== undefined ? { backoffBaseMs } : {}) });
    this.gate = new IntervalGate(cfg.minInterval, (m) => this.sender.enqueue(formatMessage(cfg.format, m)));
    this.features = cfg.events.includes('feature_above') ? new ThresholdCrossing(cfg.featureAbove) : null;
  }

  offer(m: AlertMessage): void {
    if (this.cfg.events.includes(m.event)) this.gate.offer(m);
  }

  stop(): void {
    this.gate.stop();
    this.sender.stop();
  }
}

export interface AlertServiceOptions {
  log: Logger;
  /** Tests shorten the retry pauses. */
  backoffBaseMs?: number;
}

export class AlertService implements AppService {
  readonly name = 'alerts';
  /** Subscribed before the listeners open, so no event of the start is missed. */
  readonly stage = 'before-proxy' as const;
  readonly #log: Logger;
  readonly #backoffBaseMs: number | undefined;
  readonly #matcher = new EventMatcher();
  readonly #counters = new Map<string, AlertCounters>();
  #alerts: ActiveAlert[] = [];
  #app: ProxyApp | null = null;
  #unsubscribe: (() => void) | null = null;
  #poll: NodeJS.Timeout | null = null;

  constructor(opts: AlertServiceOptions) {
    this.#log = opts.log.child({ component: 'alerts' });
    this.#backoffBaseMs = opts.backoffBaseMs;
  }

  async start(app: ProxyApp): Promise<void> {
    this.#app = app;
    this.#alerts = (app.config.alerts ?? []).map((c) => this.#build(c));
    this.#unsubscribe = app.runtime.events.subscribe((e) => this.#onEvent(e));
    this.#armPoll();
  }

  async prepareReload(config: ProxyConfig): Promise<PreparedReload | null> {
    const next = config.alerts ?? [];
    if (JSON.stringify(next) === JSON.stringify(this.#alerts.map((a) => a.cfg))) return null;
    return {
      commit: () => {
        // An unchanged alert keeps its queue and its min_interval memory; a changed or removed one is stopped.
        const old = new Map(this.#alerts.map((a) => [a.key, a]));
        this.#alerts = next.map((c) => {
          const same = old.get(JSON.stringify(c));
          if (same) old.delete(same.key);
          return same ?? this.#build(c);
        });
        for (const a of old.values()) a.stop();
        this.#armPoll();
      },
      abort: () => {},
    };
  }

  async stop(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    if (this.#poll) clearInterval(this.#poll);
    this.#poll = null;
    for (const a of this.#alerts) a.stop();
  }

  /** Counters of every alert configured since start (removed ones included: counters never go back). */
  stats(): AlertStats[] {
    const queued = new Map(this.#alerts.map((a) => [a.cfg.name, a.sender.queued]));
    return [...this.#counters].map(([name, c]) => ({ name, ...c, queued: queued.get(name) ?? 0 }));
  }

  #build(cfg: AlertConfig): ActiveAlert {
    let c = this.#counters.get(cfg.name);
    if (!c) this.#counters.set(cfg.name, (c = { ok: 0, failed: 0, dropped: 0 }));
    return new ActiveAlert(cfg, this.#log, c, this.#backoffBaseMs);
  }

  #onEvent(e: Readonly<ProxyEvent>): void {
    if (this.#alerts.length === 0) return;
    const m = this.#matcher.match(e);
    if (m === null) return;
    for (const a of this.#alerts) a.offer(m);
  }

  #armPoll(): void {
    const wanted = this.#alerts.some((a) => a.features !== null);
    if (wanted && this.#poll === null) {
      this.#poll = setInterval(() => this.#checkFeatures(), FEATURE_POLL_MS);
      this.#poll.unref();
    } else if (!wanted && this.#poll !== null) {
      clearInterval(this.#poll);
      this.#poll = null;
    }
  }

  #checkFeatures(): void {
    const app = this.#app;
    if (!app) return;
    const uses = featureUse(app.runtime);
    for (const a of this.#alerts) {
      if (a.features === null) continue;
      for (const u of a.features.crossed(uses)) {
        a.offer({
          event: 'feature_above',
          time: u.at,
          pool: u.pool,
          server: u.server,
          feature: u.feature,
          used: u.used,
          issued: u.issued,
          reason: `${u.used} of ${u.issued} seats in use, at or above ${Math.round(a.cfg.featureAbove * 1000) / 10}%`,
          suppressed: 0,
        });
      }
    }
  }
}
