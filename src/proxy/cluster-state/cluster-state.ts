/**
 * The `cluster:` service (SPEC 9): this instance's link to the cluster's Redis and what goes through it: the
 * shared source-affinity bindings (the pools' affinity factory), admin state, the event history and the peers'
 * heartbeats. Built only when the configuration has a `cluster:` section; without one, nothing here is loaded and
 * the forwarding path is the single-instance one. With `global.workers` > 1 it lives in the primary, which owns
 * the affinity tables the workers ask.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../../common/logger.ts';
import type { ClusterConfig } from '../../config/cluster-config.ts';
import type { ProxyConfig } from '../../config/proxy-config.ts';
import { createAffinity } from '../affinity/create-affinity.ts';
import type { AppService, PreparedReload, ProxyApp } from '../app.ts';
import type { ProxyEvent } from '../event-log.ts';
import type { AffinityFactory } from '../pool.ts';
import type { AdminChange, ClusterStatus, ClusterView } from './cluster-view.ts';
import { ClusterKeys } from './keys.ts';
import { Peers } from './peers.ts';
import { RedisLink } from './redis-link.ts';
import { SharedAdmin } from './shared-admin.ts';
import { SharedBindings } from './shared-bindings.ts';
import { SharedEvents } from './shared-events.ts';
import { SharedSourceAffinity } from './shared-source-affinity.ts';

/** Bindings with open connections get their Redis TTL renewed this often (bounded by a third of the TTL). */
const REFRESH_MS = 30_000;
/** How long start waits for a first Redis answer before it goes on alone (it re-syncs when Redis answers). */
const START_WAIT_MS = 1_000;

export class ClusterState implements AppService, ClusterView {
  readonly name = 'cluster';
  readonly stage = 'after-proxy' as const;
  readonly config: ClusterConfig;
  readonly #log: Logger;
  readonly #link: RedisLink;
  readonly #keys: ClusterKeys;
  readonly #bindings: SharedBindings;
  readonly #admin: SharedAdmin;
  readonly #events: SharedEvents;
  readonly #peers: Peers;
  #app: ProxyApp | null = null;
  #refresh: NodeJS.Timeout | null = null;

  constructor(config: ClusterConfig, log: Logger) {
    this.config = config;
    this.#log = log.child({ component: 'cluster', cluster: config.name, instance: config.instance });
    this.#keys = new ClusterKeys(config.name);
    this.#link = new RedisLink(config, this.#log);
    this.#bindings = new SharedBindings(this.#link, this.#keys, this.#log);
    this.#admin = new SharedAdmin(this.#link, this.#keys, config.instance, this.#log);
    this.#events = new SharedEvents(this.#link, this.#keys, config.instance, this.#log);
    this.#peers = new Peers(this.#link, this.#keys, config.instance);
  }

  /** For RuntimeOptions.affinityFactory: pools with `affinity.by: source` share their bindings through Redis. */
  readonly affinityFactory: AffinityFactory = (config, host) =>
    config.by === 'source'
      ? new SharedSourceAffinity(config, host, this.#bindings, this.config.timeout, () => this.#link.countError())
      : createAffinity(config, host);

  async start(app: ProxyApp): Promise<void> {
    this.#app = app;
    const rt = app.runtime;
    this.#bindings.attach(
      (pool, ip, server) => {
        const a = rt.pool(pool)?.affinity;
        if (a instanceof SharedSourceAffinity) a.adopt(ip, server);
      },
      (pool, ip) => {
        const a = rt.pool(pool)?.affinity;
        return a instanceof SharedSourceAffinity ? a.table.peek(ip)?.name : undefined;
      },
      () =>
        rt.config.pools.flatMap((p) => {
          const a = rt.pool(p.name)?.affinity;
          if (!(a instanceof SharedSourceAffinity)) return [];
          return [{ pool: p.name, ttl: p.affinity.ttl, entries: a.table.liveEntries().map(([ip, s]): [string, string] => [ip, s.name]) }];
        }),
    );
    this.#admin.attach(rt);
    this.#events.attach(rt.events);
    this.#peers.start(configHash(app.config));
    const every = Math.max(1_000, Math.min(REFRESH_MS, ...app.config.pools.map((p) => Math.floor(p.affinity.ttl / 3))));
    this.#refresh = setInterval(() => this.#refreshBusy(), every);
    this.#refresh.unref();
    await this.#firstContact();
  }

  /** Waits (bounded) for Redis, so admin state set elsewhere is in force before the first clients are balanced. */
  async #firstContact(): Promise<void> {
    const deadline = Date.now() + START_WAIT_MS;
    while (!this.#link.isUp && this.#link.state === 'connecting' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (this.#link.isUp) await this.#admin.ready();
  }

  #refreshBusy(): void {
    const rt = this.#app?.runtime;
    if (!rt) return;
    for (const p of rt.config.pools) {
      const a = rt.pool(p.name)?.affinity;
      if (a instanceof SharedSourceAffinity) a.refreshBusy();
    }
  }

  /** A changed `cluster:` section applies at the next start (the Redis link and the instance name stay). */
  prepareReload(config: ProxyConfig): Promise<PreparedReload | null> {
    if (JSON.stringify(config.cluster ?? null) !== JSON.stringify(this.config)) {
      this.#log.warn('cluster: section changed: applies at the next start');
    }
    this.#peers.configHash = configHash(config);
    return Promise.resolve(null);
  }

  async stop(): Promise<void> {
    if (this.#refresh) clearInterval(this.#refresh);
    this.#peers.stop();
    this.#admin.stop();
    await this.#link.close();
  }

  // ---- ClusterView ----

  status(): ClusterStatus {
    const l = this.#link.status();
    return {
      name: this.config.name,
      instance: this.config.instance,
      redis: { where: this.#link.where, connected: this.#link.isUp, since: l.since, lastError: l.lastError, errors: l.errors },
      bindings: { pendingWriteBack: this.#bindings.pending, writtenBack: this.#bindings.writtenBack, conflicts: this.#bindings.conflicts },
      peers: this.#peers.list(),
    };
  }

  events(): ProxyEvent[] | null {
    return this.#events.list();
  }

  adminChanged(pool: string, server: string, change: AdminChange): void {
    this.#admin.publish(pool, server, change);
  }
}

/** A short digest of the configuration file as loaded, shown beside each peer (two instances should agree). */
function configHash(config: ProxyConfig): string {
  const { file: _file, warnings: _w, cluster: _c, ...rest } = config;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex').slice(0, 12);
}
