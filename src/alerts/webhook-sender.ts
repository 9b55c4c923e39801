/**
 * Delivers one alert's messages to its webhook, one POST at a time in order, over node:http / node:https. A failed
 * attempt (no answer within `timeout`, a connection error, a status other than 2xx) is retried after an
 * exponentially growing pause, up to `retries` times. The queue is bounded: when a dead webhook lets it fill, the
 * oldest message is dropped and counted. Nothing here is awaited by the caller: `enqueue` returns at once.
 */
import { request as httpRequest, type ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Logger } from '../common/logger.ts';
import { errorMessage } from '../common/errors.ts';
import type { AlertConfig } from '../config/proxy-config.ts';
import { VERSION } from '../cli/version.ts';

export const QUEUE_MAX = 100;
export const BACKOFF_BASE_MS = 500;
export const BACKOFF_MAX_MS = 30_000;

/** Per alert name; kept across reloads so the metrics stay monotonic. */
export interface AlertCounters {
  ok: number;
  failed: number;
  dropped: number;
}

export interface SenderOptions {
  log: Logger;
  counters: AlertCounters;
  backoffBaseMs?: number;
  queueMax?: number;
}

interface Queued {
  body: string;
  attempts: number;
}

export class WebhookSender {
  readonly #cfg: AlertConfig;
  readonly #log: Logger;
  readonly #counters: AlertCounters;
  readonly #backoffBase: number;
  readonly #queueMax: number;
  readonly #queue: Queued[] = [];
  #busy = false;
  #timer: NodeJS.Timeout | null = null;
  #req: ClientRequest | null = null;
  #stopped = false;

  constructor(cfg: AlertConfig, opts: SenderOptions) {
    this.#cfg = cfg;
    this.#log = opts.log;
    this.#counters = opts.counters;
    this.#backoffBase = opts.backoffBaseMs ?? BACKOFF_BASE_MS;
    this.#queueMax = opts.queueMax ?? QUEUE_MAX;
  }

  get queued(): number {
    return this.#queue.length;
  }

  enqueue(body: string): void {
    if (this.#stopped) return;
    // The message being sent (index 0 while busy) is not dropped under it; the next oldest is.
    const oldest = this.#busy ? 1 : 0;
    while (this.#queue.length >= this.#queueMax && this.#queue.length > oldest) {
      this.#queue.splice(oldest, 1);
      this.#counters.dropped++;
    }
    this.#queue.push({ body, attempts: 0 });
    if (!this.#busy && this.#timer === null) {
      // Started outside the caller's stack: the state change that raised the event finishes first.
      this.#busy = true;
      setImmediate(() => this.#next());
    }
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#req?.destroy();
    this.#queue.length = 0;
  }

  #next(): void {
    this.#busy = false;
    if (this.#stopped || this.#queue.length === 0) return;
    this.#busy = true;
    const item = this.#queue[0]!;
    item.attempts++;
    this.#post(item.body, (error) => {
      this.#req = null;
      if (this.#stopped) return;
      if (error === null) {
        this.#counters.ok++;
        this.#queue.shift();
        return this.#next();
      }
      if (item.attempts > this.#cfg.retries) {
        this.#counters.failed++;
        this.#log.warn({ alert: this.#cfg.name, attempts: item.attempts, error }, 'alert not delivered: giving up on this message');
        if (this.#queue[0] === item) this.#queue.shift();
        return this.#next();
      }
      const pause = Math.min(BACKOFF_MAX_MS, this.#backoffBase * 2 ** (item.attempts - 1));
      this.#log.info({ alert: this.#cfg.name, attempt: item.attempts, retryInMs: pause, error }, 'alert delivery failed: retrying');
      this.#busy = false;
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#next();
      }, pause);
      this.#timer.unref();
    });
  }

  /** One attempt; `done(null)` on a 2xx answer, else `done(reason)`. Called exactly once. */
  #post(body: string, done: (error: string | null) => void): void {
    let finished = false;
    const finish = (error: string | null): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      done(error);
    };
    const url = new URL(this.#cfg.url);
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const payload = Buffer.from(body, 'utf8');
    let req: ClientRequest;
    try {
      req = request(url, {
        method: 'POST',
        headers: {
          ...this.#cfg.headers,
          'content-type': 'application/json; charset=utf-8',
          'content-length': payload.length,
          'user-agent': `licproxy/${VERSION}`,
        },
      });
    } catch (err) {
      setImmediate(() => done(errorMessage(err)));
      return;
    }
    this.#req = req;
    // One deadline for the whole exchange (connect, send, status line): a webhook that accepts and never answers
    // costs `timeout`, not a socket held for ever.
    const timer = setTimeout(() => {
      finish(`no answer within ${this.#cfg.timeout}ms`);
      req.destroy();
    }, this.#cfg.timeout);
    timer.unref();
    req.on('error', (err) => finish(errorMessage(err)));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      // The answer's body is not needed; read and discard it so the connection can be reused.
      res.resume();
      res.on('error', () => {});
      finish(status >= 200 && status < 300 ? null : `HTTP ${status}`);
    });
    req.end(payload);
  }
}
