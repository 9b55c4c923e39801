/**
 * Records license usage per hour (SPEC 10): samples the stats snapshot, counts each new check result once per
 * pool, server and feature (seats in use and issued), adds the pool's total (`*`), and the checkout denials the
 * proxy saw (SPEC 8 counters, as deltas). A bucket closes when the clock passes its end: its records are appended
 * to the store in one write and fsync'd. Only the open bucket lives in memory, so a SIGKILL loses at most that; a
 * graceful stop writes it too (a restart mid-hour then adds a second record for the hour, merged when read).
 *
 * The bucket is an hour; tests inject a shorter one so hours pass in milliseconds (the file format is the same).
 * Runs in the process that has the stats endpoint, which with `workers` > 1 is the primary alone.
 */
import { errorMessage } from '../../common/errors.ts';
import { silentLogger, type Logger } from '../../common/logger.ts';
import type { PoolStats, StatsSnapshot, StatsSource } from '../snapshot.ts';
import { compactUsage } from './usage-compaction.ts';
import { POOL_TOTAL, mergeRecords, type UsageRecord } from './usage-record.ts';
import { HOUR_MS, UsageStore } from './usage-store.ts';

export interface UsageRecorderOptions {
  dir: string;
  keepMs: number;
  /** Test hook: the bucket length (default an hour). */
  bucketMs?: number;
  /** How often the snapshot is sampled; only new check results count (default 5 s, at most a tenth of a bucket). */
  sampleMs?: number;
  now?: () => number;
  logger?: Logger;
}

export interface UsageQuery {
  from: number;
  to: number;
  pool?: string;
  server?: string;
  feature?: string;
}

export interface UsageResult {
  bucketMs: number;
  /** Start of the bucket still open (its records are partial). */
  openBucket: number;
  records: UsageRecord[];
}

interface Acc {
  pool: string;
  server: string;
  feature: string;
  peak: number;
  sum: number;
  n: number;
  issued: number;
  denied: number;
}

/** Closed buckets not yet on disk (a failing disk): beyond this many records the oldest are dropped. */
const MAX_PENDING = 100_000;

export class UsageRecorder {
  readonly store: UsageStore;
  readonly keepMs: number;
  readonly bucketMs: number;
  readonly #sampleMs: number;
  readonly #now: () => number;
  readonly #log: Logger;
  #source: StatsSource | null = null;
  #timer: NodeJS.Timeout | null = null;
  #bucket = -1;
  #acc = new Map<string, Acc>();
  readonly #lastCheck = new Map<string, number>();
  readonly #lastDenied = new Map<string, number>();
  #pending: UsageRecord[] = [];
  #writing: Promise<void> = Promise.resolve();
  #sampling = false;

  constructor(opts: UsageRecorderOptions) {
    this.bucketMs = opts.bucketMs ?? HOUR_MS;
    this.keepMs = opts.keepMs;
    this.store = new UsageStore(opts.dir, this.bucketMs);
    this.#sampleMs = opts.sampleMs ?? Math.max(10, Math.min(5_000, Math.floor(this.bucketMs / 10)));
    this.#now = opts.now ?? Date.now;
    this.#log = opts.logger ?? silentLogger;
  }

  start(source: StatsSource): void {
    this.#source = source;
    this.#bucket = this.#bucketOf(this.#now());
    this.#compact();
    this.#timer = setInterval(() => void this.tick(), this.#sampleMs);
    this.#timer.unref();
  }

  /** One sampling step (the timer's; tests may call it). */
  async tick(): Promise<void> {
    const source = this.#source;
    if (source === null || this.#sampling) return;
    this.#sampling = true;
    try {
      this.#rollover(this.#now());
      if (source.refresh) await source.refresh.call(source);
      if (this.#source === null) return;
      this.sample(source.snapshot());
    } catch (err) {
      this.#log.warn({ err: errorMessage(err) }, 'usage history: sampling failed');
    } finally {
      this.#sampling = false;
    }
  }

  /** Adds a snapshot's new check results and denials to the open bucket. */
  sample(snap: StatsSnapshot): void {
    this.#rollover(this.#now());
    for (const pool of snap.pools) this.#samplePool(pool);
  }

  #samplePool(pool: PoolStats): void {
    let fresh = false;
    for (const s of pool.servers) {
      const c = s.lastCheck;
      if (c === null || !c.ok || s.features.length === 0) continue;
      const key = `${pool.name}\n${s.name}`;
      if (this.#lastCheck.get(key) === c.at) continue;
      this.#lastCheck.set(key, c.at);
      fresh = true;
      for (const f of s.features) this.#add(pool.name, s.name, f.name, f.inUse, f.issued);
    }
    if (fresh) {
      // Members of a redundant set (pair, triad, master pool) report the same seats: the total is the highest
      // report, not the sum. Independent servers each hold their own seats: the total is the sum.
      const shared = pool.mode === 'master' || pool.redundancy !== undefined;
      const total = new Map<string, { inUse: number; issued: number }>();
      for (const s of pool.servers) {
        if (s.lastCheck === null || !s.lastCheck.ok) continue;
        for (const f of s.features) {
          const t = total.get(f.name) ?? { inUse: 0, issued: 0 };
          if (shared) {
            t.inUse = Math.max(t.inUse, f.inUse);
            t.issued = Math.max(t.issued, f.issued);
          } else {
            t.inUse += f.inUse;
            t.issued += f.issued;
          }
          total.set(f.name, t);
        }
      }
      for (const [feature, t] of total) this.#add(pool.name, POOL_TOTAL, feature, t.inUse, t.issued);
    }
    for (const row of pool.checkouts ?? []) {
      const key = `${pool.name}\n${row.server}\n${row.feature}`;
      const last = this.#lastDenied.get(key) ?? 0;
      this.#lastDenied.set(key, row.denied);
      // A smaller count: the counters restarted (a reload that rebuilt the pool, a restarted worker).
      const delta = row.denied >= last ? row.denied - last : row.denied;
      if (delta === 0) continue;
      this.#accFor(pool.name, row.server, row.feature).denied += delta;
      this.#accFor(pool.name, POOL_TOTAL, row.feature).denied += delta;
    }
  }

  #add(pool: string, server: string, feature: string, inUse: number, issued: number): void {
    const a = this.#accFor(pool, server, feature);
    a.peak = Math.max(a.peak, inUse);
    a.sum += inUse;
    a.n++;
    a.issued = Math.max(a.issued, issued);
  }

  #accFor(pool: string, server: string, feature: string): Acc {
    const key = `${pool}\n${server}\n${feature}`;
    let a = this.#acc.get(key);
    if (a === undefined) this.#acc.set(key, (a = { pool, server, feature, peak: 0, sum: 0, n: 0, issued: 0, denied: 0 }));
    return a;
  }

  #bucketOf(t: number): number {
    return Math.floor(t / this.bucketMs) * this.bucketMs;
  }

  /** Closes the open bucket when `now` is past it. */
  #rollover(now: number): void {
    const b = this.#bucketOf(now);
    if (b === this.#bucket) return;
    this.#close();
    this.#bucket = b;
    this.#compact();
  }

  #openRecords(): UsageRecord[] {
    const at = this.#bucket;
    return [...this.#acc.values()].map((a) => ({
      at,
      pool: a.pool,
      server: a.server,
      feature: a.feature,
      peak: a.peak,
      mean: a.n > 0 ? a.sum / a.n : 0,
      issued: a.issued,
      denied: a.denied,
      samples: a.n,
    }));
  }

  #close(): void {
    const records = this.#openRecords();
    this.#acc = new Map();
    if (records.length === 0) return;
    this.#pending.push(...records);
    if (this.#pending.length > MAX_PENDING) this.#pending.splice(0, this.#pending.length - MAX_PENDING);
    this.#flush();
  }

  /** Writes what is pending, one write at a time; on failure it stays pending for the next bucket's write. */
  #flush(): void {
    this.#writing = this.#writing.then(async () => {
      const batch = this.#pending;
      if (batch.length === 0) return;
      this.#pending = [];
      try {
        await this.store.append(batch);
      } catch (err) {
        this.#pending = [...batch, ...this.#pending];
        this.#log.error({ err: errorMessage(err), dir: this.store.dir }, 'usage history: writing a closed hour failed; kept in memory for the next write');
      }
    });
  }

  #compact(): void {
    this.#writing = this.#writing.then(async () => {
      const gone = await compactUsage(this.store, this.keepMs, this.#now());
      if (gone.length > 0) this.#log.info({ files: gone }, 'usage history: dropped days older than stats.history.keep');
    }).catch((err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'usage history: compaction failed'));
  }

  /** Records in the query's range: on disk, pending, and the open bucket (partial), merged per bucket. */
  async query(q: UsageQuery): Promise<UsageResult> {
    await this.#writing;
    const now = this.#now();
    const from = Math.max(q.from, now - this.keepMs);
    const all = [...(await this.store.read(from, q.to)), ...this.#pending, ...this.#openRecords()];
    const records = mergeRecords(
      all.filter((r) => r.at >= from && r.at < q.to &&
        (q.pool === undefined || r.pool === q.pool) &&
        (q.server === undefined || r.server === q.server) &&
        (q.feature === undefined || r.feature === q.feature)),
    );
    return { bucketMs: this.bucketMs, openBucket: this.#bucket, records };
  }

  /** Stops sampling and writes the open bucket (graceful stop: a restart keeps the hour so far). */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#source = null;
    this.#close();
    await this.#writing;
  }
}
