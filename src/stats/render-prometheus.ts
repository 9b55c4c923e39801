/**
 * `/metrics`: Prometheus text format 0.0.4 from a snapshot.
 *
 * prom-client supplies the process metrics (`process_*`, `nodejs_*`) on a registry of its own (never the global
 * one, so two runtimes or tests in one process cannot collide) and the content type. licproxy's families are
 * written here, straight from the snapshot: at 1000 servers prom-client's generic per-sample formatting (label
 * objects, hashing, re-escaping every label on every line) cost ~100 ms of CPU per scrape on the 2-core target,
 * over the 100 ms budget; writing them directly escapes each server's labels once and costs a tenth of that.
 *
 * Semantics are prom-client's: counters expose the proxy's own monotonic counters (TYPE counter, `_total`); a
 * counter that restarts (a server removed and added back) reads as a counter reset, which `rate()` handles.
 * Series of servers, pools and frontends that disappeared (reload) are gone from the next scrape by construction.
 * The check-duration histogram comes from the proxy, which counts every check (`checkDurations`); for a source
 * without those counts the exporter falls back to observing each new `lastCheck` once, a sample per scrape.
 */
import { CHECK_DURATION_BUCKETS } from '../health/types.ts';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { FrontendStats, PoolStats, ServerStats, StatsSnapshot } from './snapshot.ts';
import { isHealthUp } from './status.ts';

export interface PrometheusOptions {
  /** Process metrics (`process_*`, `nodejs_*`) from prom-client; default true. */
  defaultMetrics?: boolean;
}

type Type = 'counter' | 'gauge';
interface Family<T> {
  name: string;
  type: Type;
  help: string;
  value: (x: T) => number;
}

export const CHECK_BUCKETS = CHECK_DURATION_BUCKETS;

const SERVER_FAMILIES: Family<ServerStats>[] = [
  { name: 'licproxy_server_up', type: 'gauge', help: 'Whether health checks hold the server UP (1) or not (0)', value: (s) => (isHealthUp(s.status) ? 1 : 0) },
  { name: 'licproxy_server_sessions_current', type: 'gauge', help: 'Client connections currently on the server', value: (s) => s.scur },
  { name: 'licproxy_server_sessions_max', type: 'gauge', help: 'Highest number of concurrent connections seen on the server', value: (s) => s.smax },
  { name: 'licproxy_server_weight', type: 'gauge', help: 'Effective weight of the server (0-256)', value: (s) => s.weight.effective },
  { name: 'licproxy_server_tier', type: 'gauge', help: 'Tier of the server (0 = active, 1.. = backup tiers)', value: (s) => s.tier },
  { name: 'licproxy_server_bindings', type: 'gauge', help: 'Affinity bindings pointing at the server', value: (s) => s.bindings },
  { name: 'licproxy_server_sessions_total', type: 'counter', help: 'Client connections sent to the server', value: (s) => s.stot },
  { name: 'licproxy_server_bytes_in_total', type: 'counter', help: 'Bytes forwarded from clients to the server', value: (s) => s.bytesIn },
  { name: 'licproxy_server_bytes_out_total', type: 'counter', help: 'Bytes forwarded from the server to clients', value: (s) => s.bytesOut },
  { name: 'licproxy_server_connect_errors_total', type: 'counter', help: 'Failed connection attempts to the server', value: (s) => s.connectErrors },
  { name: 'licproxy_server_retries_total', type: 'counter', help: 'Connection retries on the server', value: (s) => s.retries },
  { name: 'licproxy_server_redispatches_total', type: 'counter', help: 'Clients redispatched away from the server after a failed connect', value: (s) => s.redispatches },
  { name: 'licproxy_server_check_failures_total', type: 'counter', help: 'Failed health checks of the server', value: (s) => s.checkFailures },
  { name: 'licproxy_server_full', type: 'gauge', help: 'Whether the server is out of seats of the pool feature (FULL: UP, no new clients)', value: (s) => (s.status === 'FULL' ? 1 : 0) },
  { name: 'licproxy_server_downtime_seconds_total', type: 'counter', help: 'Time the server spent DOWN', value: (s) => s.downtimeMs / 1000 },
];

const POOL_FAMILIES: Family<PoolStats>[] = [
  { name: 'licproxy_pool_available', type: 'gauge', help: 'Whether the pool can serve a new client (1) or not (0)', value: (p) => (p.available ? 1 : 0) },
  { name: 'licproxy_pool_usable_servers', type: 'gauge', help: 'Servers of the pool that can take new clients', value: (p) => p.usable },
  { name: 'licproxy_pool_queue_current', type: 'gauge', help: 'Clients waiting in the pool queue', value: (p) => p.queue.cur },
  { name: 'licproxy_pool_failovers_total', type: 'counter', help: 'Changes of the tier or server taking new clients', value: (p) => p.failovers },
  { name: 'licproxy_affinity_bindings', type: 'gauge', help: 'Affinity bindings held by the pool', value: (p) => p.affinity.bindings },
  { name: 'licproxy_affinity_hits_total', type: 'counter', help: 'Connections routed by an existing binding', value: (p) => p.affinity.hits },
  { name: 'licproxy_affinity_misses_total', type: 'counter', help: 'Connections that found no binding', value: (p) => p.affinity.misses },
  { name: 'licproxy_affinity_evictions_total', type: 'counter', help: 'Bindings dropped (ttl, server down, capacity)', value: (p) => p.affinity.evictions },
];

const FRONTEND_FAMILIES: Family<FrontendStats>[] = [
  { name: 'licproxy_frontend_open', type: 'gauge', help: 'Whether the frontend listener accepts (1) or is stopped (0)', value: (f) => (f.status === 'OPEN' ? 1 : 0) },
  { name: 'licproxy_frontend_connections_current', type: 'gauge', help: 'Client connections open on the frontend', value: (f) => f.scur },
  { name: 'licproxy_frontend_connections_total', type: 'counter', help: 'Client connections accepted by the frontend', value: (f) => f.stot },
  { name: 'licproxy_frontend_denied_total', type: 'counter', help: 'Client connections closed at accept (allow list, limits)', value: (f) => f.denied },
  { name: 'licproxy_frontend_bytes_in_total', type: 'counter', help: 'Bytes received from clients of the frontend', value: (f) => f.bytesIn },
  { name: 'licproxy_frontend_bytes_out_total', type: 'counter', help: 'Bytes sent to clients of the frontend', value: (f) => f.bytesOut },
];

/** Every licproxy family name, for docs and tests. */
export const LICPROXY_METRICS: readonly string[] = [
  ...SERVER_FAMILIES.map((f) => f.name), 'licproxy_server_state_changes_total', 'licproxy_server_check_duration_seconds',
  ...POOL_FAMILIES.map((f) => f.name), ...FRONTEND_FAMILIES.map((f) => f.name),
  'licproxy_license_feature_issued', 'licproxy_license_feature_used', 'licproxy_license_feature_free', 'licproxy_pool_feature_served',
  'licproxy_license_checkouts_total', 'licproxy_build_info', 'licproxy_uptime_seconds',
  'licproxy_workers', 'licproxy_worker_restarts_total', 'licproxy_worker_connections', 'licproxy_reload_total',
  'licproxy_last_reload_success_timestamp_seconds', 'licproxy_alerts_sent_total', 'licproxy_alerts_dropped_total',
];

interface CheckHistogram {
  lastAt: number;
  buckets: number[];
  sum: number;
  count: number;
  seen: boolean;
}

export class PrometheusExporter {
  /** prom-client registry holding the process metrics; callers may register more metrics in it. */
  readonly registry = new Registry();
  /** Check-duration histogram state per server (`pool\0server`). */
  readonly #checks = new Map<string, CheckHistogram>();

  constructor(opts: PrometheusOptions = {}) {
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  async render(snapshot: StatsSnapshot): Promise<string> {
    const own = this.renderOwn(snapshot);
    const rest = await this.registry.metrics();
    return rest.trim() === '' ? own : `${own}\n${rest}`;
  }

  /** licproxy's families only, synchronously (updates the check histogram). */
  renderOwn(snapshot: StatsSnapshot): string {
    const servers: ServerStats[] = [];
    const labels: string[] = [];
    const poolOf: (string | undefined)[] = [];
    for (const pool of snapshot.pools) {
      const pl = `pool="${escapeLabel(pool.name)}"`;
      for (const s of pool.servers) {
        servers.push(s);
        poolOf.push(pool.feature);
        labels.push(`${pl},server="${escapeLabel(s.name)}"`);
      }
    }
    let out = '';
    for (const fam of SERVER_FAMILIES) {
      out += header(fam.name, fam.type, fam.help);
      for (let i = 0; i < servers.length; i++) out += `${fam.name}{${labels[i]}} ${fmt(fam.value(servers[i]!), fam.type)}\n`;
    }
    out += header('licproxy_server_state_changes_total', 'counter', 'Health transitions of the server, by the state it went to');
    for (let i = 0; i < servers.length; i++) {
      const s = servers[i]!;
      out += `licproxy_server_state_changes_total{${labels[i]},to="down"} ${fmt(s.downTransitions, 'counter')}\n`;
      out += `licproxy_server_state_changes_total{${labels[i]},to="up"} ${fmt(s.upTransitions, 'counter')}\n`;
    }
    out += this.#checkHistogram(snapshot, labels);
    out += header('licproxy_license_feature_issued', 'gauge', 'Licenses of a feature issued by the server (last lmstat check)');
    for (let i = 0; i < servers.length; i++) {
      for (const f of servers[i]!.features) out += `licproxy_license_feature_issued{${labels[i]},feature="${escapeLabel(f.name)}"} ${fmt(f.issued)}\n`;
    }
    out += header('licproxy_license_feature_used', 'gauge', 'Licenses of a feature in use on the server (last lmstat check)');
    for (let i = 0; i < servers.length; i++) {
      for (const f of servers[i]!.features) out += `licproxy_license_feature_used{${labels[i]},feature="${escapeLabel(f.name)}"} ${fmt(f.inUse)}\n`;
    }
    out += checkoutFamily(snapshot);
    out += header('licproxy_license_feature_free', 'gauge', 'Free seats of a feature on the server (last check, less seats given out since in pools that count seats)');
    for (let i = 0; i < servers.length; i++) {
      const s = servers[i]!;
      const poolFeature = poolOf[i];
      for (const f of s.features) {
        const free = f.name === poolFeature && s.freeSeats != null ? s.freeSeats : Math.max(0, f.issued - f.inUse);
        out += `licproxy_license_feature_free{${labels[i]},feature="${escapeLabel(f.name)}"} ${fmt(free)}\n`;
      }
    }
    out += header('licproxy_pool_feature_served', 'gauge', 'Whether any server of the pool serves its feature (0: a configuration mistake)');
    for (const pool of snapshot.pools) {
      if (pool.feature === undefined) continue;
      out += `licproxy_pool_feature_served{pool="${escapeLabel(pool.name)}",feature="${escapeLabel(pool.feature)}"} ${pool.featureServed ? 1 : 0}\n`;
    }
    const poolLabels = snapshot.pools.map((p) => `pool="${escapeLabel(p.name)}"`);
    for (const fam of POOL_FAMILIES) {
      out += header(fam.name, fam.type, fam.help);
      snapshot.pools.forEach((p, i) => (out += `${fam.name}{${poolLabels[i]}} ${fmt(fam.value(p), fam.type)}\n`));
    }
    const feLabels = snapshot.frontends.map((f) => `frontend="${escapeLabel(f.name)}",pool="${escapeLabel(f.pool)}"`);
    for (const fam of FRONTEND_FAMILIES) {
      out += header(fam.name, fam.type, fam.help);
      snapshot.frontends.forEach((f, i) => (out += `${fam.name}{${feLabels[i]}} ${fmt(fam.value(f), fam.type)}\n`));
    }
    out += header('licproxy_build_info', 'gauge', 'licproxy version (always 1)');
    out += `licproxy_build_info{version="${escapeLabel(snapshot.process.version)}"} 1\n`;
    out += header('licproxy_uptime_seconds', 'gauge', 'Time since licproxy started');
    out += `licproxy_uptime_seconds ${fmt(snapshot.process.uptimeMs / 1000)}\n`;
    const reloads = snapshot.process.reloads;
    if (reloads !== undefined) {
      out += header('licproxy_reload_total', 'counter', 'Reloads of the configuration (SIGHUP, POST /api/reload), by result');
      out += `licproxy_reload_total{result="ok"} ${fmt(reloads.ok, 'counter')}\n`;
      out += `licproxy_reload_total{result="failed"} ${fmt(reloads.failed, 'counter')}\n`;
      out += header('licproxy_last_reload_success_timestamp_seconds', 'gauge', 'When the running configuration was loaded (Unix time; the start counts)');
      out += `licproxy_last_reload_success_timestamp_seconds ${fmt(reloads.lastSuccessAt / 1000)}\n`;
    }
    out += alertFamilies(snapshot);
    const workers = snapshot.process.workers;
    if (workers !== undefined) {
      // With `global.workers`: a worker that keeps dying shows as restarts going up (and `licproxy_workers` below N).
      out += header('licproxy_workers', 'gauge', 'Worker processes running');
      out += `licproxy_workers ${workers.filter((w) => w.pid !== 0).length}\n`;
      out += header('licproxy_worker_restarts_total', 'counter', 'Times the worker in this slot was replaced');
      for (const w of workers) out += `licproxy_worker_restarts_total{worker="${w.index}"} ${w.restarts}\n`;
      out += header('licproxy_worker_connections', 'gauge', 'Client connections of the worker');
      for (const w of workers) out += `licproxy_worker_connections{worker="${w.index}"} ${w.connections}\n`;
    }
    return out;
  }

  #checkHistogram(snapshot: StatsSnapshot, labels: string[]): string {
    let out = header('licproxy_server_check_duration_seconds', 'histogram', 'Duration of the health checks of the server');
    for (const h of this.#checks.values()) h.seen = false;
    let i = 0;
    for (const pool of snapshot.pools) {
      for (const s of pool.servers) {
        const key = `${pool.name}\u0000${s.name}`;
        const d = s.checkDurations;
        if (d) {
          // The proxy counted every check itself: print its buckets cumulatively, as Prometheus wants them.
          const l = labels[i]!;
          let cum = 0;
          for (let b = 0; b < CHECK_BUCKETS.length; b++) {
            cum += d.buckets[b] ?? 0;
            out += `licproxy_server_check_duration_seconds_bucket{${l},le="${CHECK_BUCKETS[b]}"} ${cum}\n`;
          }
          out += `licproxy_server_check_duration_seconds_bucket{${l},le="+Inf"} ${d.count}\n`;
          out += `licproxy_server_check_duration_seconds_sum{${l}} ${fmt(d.sumSeconds)}\n`;
          out += `licproxy_server_check_duration_seconds_count{${l}} ${d.count}\n`;
          i++;
          continue;
        }
        let h = this.#checks.get(key);
        const check = s.lastCheck;
        if (check && h?.lastAt !== check.at) {
          if (!h) {
            h = { lastAt: check.at, buckets: new Array<number>(CHECK_BUCKETS.length).fill(0), sum: 0, count: 0, seen: true };
            this.#checks.set(key, h);
          }
          const v = finite(check.durationMs) / 1000;
          h.lastAt = check.at;
          h.sum += v;
          h.count++;
          for (let b = 0; b < CHECK_BUCKETS.length; b++) if (v <= CHECK_BUCKETS[b]!) h.buckets[b]!++;
        }
        if (h) {
          h.seen = true;
          const l = labels[i]!;
          for (let b = 0; b < CHECK_BUCKETS.length; b++) {
            out += `licproxy_server_check_duration_seconds_bucket{${l},le="${CHECK_BUCKETS[b]}"} ${h.buckets[b]}\n`;
          }
          out += `licproxy_server_check_duration_seconds_bucket{${l},le="+Inf"} ${h.count}\n`;
          out += `licproxy_server_check_duration_seconds_sum{${l}} ${fmt(h.sum)}\n`;
          out += `licproxy_server_check_duration_seconds_count{${l}} ${h.count}\n`;
        }
        i++;
      }
    }
    for (const [key, h] of this.#checks) if (!h.seen) this.#checks.delete(key);
    return out;
  }
}

/** SPEC 10: webhook deliveries per alert (`result`: ok, or failed after every retry) and messages dropped. */
function alertFamilies(snapshot: StatsSnapshot): string {
  const alerts = snapshot.process.alerts;
  if (alerts === undefined) return '';
  let out = header('licproxy_alerts_sent_total', 'counter', 'Alert messages POSTed to the webhook, by result (failed: given up after every retry)');
  for (const a of alerts) {
    const l = `alert="${escapeLabel(a.name)}"`;
    out += `licproxy_alerts_sent_total{${l},result="ok"} ${fmt(a.ok, 'counter')}\n`;
    out += `licproxy_alerts_sent_total{${l},result="failed"} ${fmt(a.failed, 'counter')}\n`;
  }
  out += header('licproxy_alerts_dropped_total', 'counter', 'Alert messages dropped because the queue of the webhook was full (oldest first)');
  for (const a of alerts) out += `licproxy_alerts_dropped_total{alert="${escapeLabel(a.name)}"} ${fmt(a.dropped, 'counter')}\n`;
  return out;
}

/** SPEC 8.2: licd pools only, one series per (pool, server, feature, result) seen. */
function checkoutFamily(snapshot: StatsSnapshot): string {
  if (!snapshot.pools.some((p) => p.checkouts !== undefined)) return '';
  let out = header('licproxy_license_checkouts_total', 'counter', 'First CHECKOUT of licd connections by outcome (retried_saved: part of granted; queue_wait: waited for a server)');
  for (const p of snapshot.pools) {
    for (const r of p.checkouts ?? []) {
      const l = `pool="${escapeLabel(p.name)}",server="${escapeLabel(r.server)}",feature="${escapeLabel(r.feature)}"`;
      out += `licproxy_license_checkouts_total{${l},result="granted"} ${fmt(r.granted, 'counter')}\n`;
      out += `licproxy_license_checkouts_total{${l},result="denied"} ${fmt(r.denied, 'counter')}\n`;
      out += `licproxy_license_checkouts_total{${l},result="retried_saved"} ${fmt(r.retriedSaved, 'counter')}\n`;
      out += `licproxy_license_checkouts_total{${l},result="queue_wait"} ${fmt(r.queueWaits, 'counter')}\n`;
    }
  }
  return out;
}

function header(name: string, type: Type | 'histogram', help: string): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`;
}

/** Label values: backslash, double quote and line feed escaped, as the text format requires. */
function escapeLabel(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
}

/** A bad value from an adapter must not break the exposition: non-finite numbers read as 0, counters never below 0. */
function fmt(v: number, type: Type = 'gauge'): string {
  if (!Number.isFinite(v)) return '0';
  return type === 'counter' && v < 0 ? '0' : String(v);
}

function finite(v: number): number {
  return Number.isFinite(v) && v > 0 ? v : 0;
}
