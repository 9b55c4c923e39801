/**
 * The cluster primary (`global.workers` > 1). It holds what must be one for the whole balancer: the configuration
 * and its reloads, the health checks, the affinity tables, the admin API and the stats (the ProxyApp it serves
 * runs with frontends that do not listen). Its N workers accept and forward (worker.ts). It tells them every
 * server state change, answers their affinity asks, adds up their counters for the stats, and replaces a worker
 * that dies with one that starts from the current configuration and states; only that worker's connections are
 * lost with it.
 */
import cluster, { type Worker } from 'node:cluster';
import { entryFile, loaderArgs } from '../../common/entry-points.ts';
import { errorMessage, LpxError } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import type { ProxyConfig } from '../../config/proxy-config.ts';
import type { AppService, PreparedReload, ProxyApp } from '../app.ts';
import type { Pool } from '../pool.ts';
import type { RuntimeSnapshot } from '../runtime.ts';
import type { Server } from '../server.ts';
import { listSessions, mergeSessionLists, type SessionList, type SessionQuery } from '../session-list.ts';
import { inheritedDescriptorCount, WORKER_FDS_ENV } from '../inherited-sockets.ts';
import { AffinityBroker } from './affinity-broker.ts';
import { mergeSnapshots } from './merge-snapshots.ts';
import { isToPrimary, type MirrorEntry, type ToPrimary, type ToWorker } from './messages.ts';

/** A worker that does not report within this is killed (start) or left out (snapshot). */
const START_TIMEOUT_MS = 30_000;
const SNAPSHOT_TIMEOUT_MS = 1_000;
/** Snapshots younger than this are reused: a dashboard polling fast costs the workers little. */
const SNAPSHOT_REUSE_MS = 100;
/** A worker that dies soon after it started is replaced after a growing pause (a crash loop must not spin). */
/** Past the grace period a worker has this long to exit before it is killed (less than the primary's own guard). */
const STOP_GUARD_MS = 3_000;
const CRASH_WINDOW_MS = 10_000;
const MAX_RESTART_DELAY_MS = 10_000;

interface Slot {
  readonly index: number;
  worker: Worker | null;
  pid: number;
  startedAt: number;
  /** Quick deaths in a row (reset by a worker that lived CRASH_WINDOW_MS). */
  crashes: number;
  restarts: number;
  /** The worker's last snapshot (null: none since it started). */
  snapshot: RuntimeSnapshot | null;
}

export interface WorkerStatus {
  index: number;
  pid: number;
  startedAt: number;
  restarts: number;
  /** Its client connections at the last refresh. */
  connections: number;
}

export interface ClusterOptions {
  workers: number;
  log: Logger;
  pretty?: boolean;
}

export class ClusterPrimary implements AppService {
  readonly name = 'workers';
  readonly stage = 'after-proxy' as const;
  readonly #log: Logger;
  readonly #pretty: boolean;
  readonly #slots: Slot[];
  #app: ProxyApp | null = null;
  #broker: AffinityBroker | null = null;
  #stopping = false;
  #seq = 0;
  readonly #pending = new Map<number, (m: ToPrimary) => void>();
  #dirty = new Map<string, MirrorEntry>();
  #flushQueued = false;
  #refreshedAt = 0;
  #refreshing: Promise<void> | null = null;

  constructor(opts: ClusterOptions) {
    this.#log = opts.log.child({ component: 'cluster' });
    this.#pretty = opts.pretty ?? false;
    this.#slots = Array.from({ length: opts.workers }, (_, index) => ({ index, worker: null, pid: 0, startedAt: 0, crashes: 0, restarts: 0, snapshot: null }));
  }

  /** For RuntimeOptions.onServerChange: a change goes to the workers once the current tick is done (coalesced). */
  readonly serverChanged = (pool: Pool, server: Server): void => {
    this.#dirty.set(`${pool.name}\0${server.name}`, [pool.name, server.name, server.mirrorState()]);
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    setImmediate(() => {
      this.#flushQueued = false;
      const states = [...this.#dirty.values()];
      this.#dirty = new Map();
      if (states.length > 0) this.#broadcast({ t: 'servers', states });
    });
  };

  async start(app: ProxyApp): Promise<void> {
    this.#app = app;
    this.#broker = new AffinityBroker(app.runtime, (worker, id, server) => this.#sendTo(worker, { t: 'aff', id, server }));
    // Fixed for the life of the process: node:cluster takes it at the first fork.
    cluster.schedulingPolicy = app.config.global.workerAccept === 'shared' ? cluster.SCHED_NONE : cluster.SCHED_RR;
    cluster.setupPrimary({
      exec: entryFile('proxy/cluster/worker-main'),
      execArgv: [...process.execArgv, ...youngGenerationArgs(process.execArgv, process.env.NODE_OPTIONS), ...loaderArgs(process.execArgv)],
      args: [],
      serialization: 'advanced',
      ...passedSocketsStdio(),
    });
    // A killed worker's IPC channel closes early in its exit, while the kernel may take seconds to tear down
    // thousands of its sockets before 'exit': the replacement starts at the disconnect.
    cluster.on('disconnect', (w) => this.#exited(w, w.process.exitCode, w.process.signalCode));
    cluster.on('exit', (w, code, signal) => {
      // Already replaced at its disconnect: the exit only says how it ended.
      if (!this.#slots.some((s) => s.worker === w)) {
        if (!this.#stopping) this.#log.info({ pid: w.process.pid, exit: signal ?? `code ${code}` }, `worker process ${w.process.pid} exited (${signal ?? `code ${code}`})`);
        return;
      }
      this.#exited(w, code, signal);
    });
    const started = await Promise.allSettled(this.#slots.map((s) => this.#fork(s)));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await this.stop();
      throw failed.reason;
    }
    this.#log.info({ workers: this.#slots.map((s) => s.pid) }, `${this.#slots.length} workers running`);
  }

  /**
   * A reload's first half in every worker: each opens its new listeners and switches nothing, so a port in use fails
   * the reload whole. The workers switch at `commit` (or close what they opened at `abort`).
   */
  async prepareReload(config: ProxyConfig): Promise<PreparedReload | null> {
    const live = this.#slots.filter((s) => s.worker !== null);
    const [first, ...rest] = live;
    if (!first) return null;
    // The very processes that prepared: a worker replaced meanwhile starts from the primary's configuration.
    const prepared = live.map((s) => s.worker!);
    const tell = (m: ToWorker): void => {
      for (const w of prepared) if (w.isConnected()) w.send(m);
    };
    const errors = [await this.#apply(first, config)];
    // The first worker opened what was new; the others share those listening sockets, so theirs cannot fail on a port.
    if (errors[0] === null) errors.push(...(await Promise.all(rest.map((s) => this.#apply(s, config)))));
    const error = errors.find((e) => e !== null);
    if (error != null) {
      tell({ t: 'abort' });
      throw new LpxError('LPX_ERR_LISTEN', error);
    }
    return { commit: () => tell({ t: 'commit' }), abort: () => tell({ t: 'abort' }) };
  }

  #apply(slot: Slot, config: ProxyConfig): Promise<string | null> {
    return this.#request(slot, (seq) => ({ t: 'apply', seq, config }), START_TIMEOUT_MS).then(
      (m) => (m.t === 'applied' ? m.error : null),
      (err: unknown) => `worker ${slot.index}: ${errorMessage(err)}`,
    );
  }

  /** Graceful stop: every worker stops accepting and waits up to `graceMs` for its connections, then exits. */
  async stop(graceMs = this.#app?.config.global.grace ?? 0): Promise<void> {
    this.#stopping = true;
    const exits = this.#slots.filter((s) => s.worker !== null).map((s) => exitOf(s.worker!));
    this.#broadcast({ t: 'stop', graceMs });
    const guard = setTimeout(() => {
      for (const s of this.#slots) s.worker?.process.kill('SIGKILL');
    }, graceMs + STOP_GUARD_MS);
    await Promise.all(exits);
    clearTimeout(guard);
  }

  // ---- stats ----

  /** Fetches every worker's snapshot (bounded wait; a worker that does not answer in time is left out). */
  refresh(): Promise<void> {
    if (performance.now() - this.#refreshedAt < SNAPSHOT_REUSE_MS) return Promise.resolve();
    this.#refreshing ??= (async () => {
      await Promise.all(
        this.#slots.map(async (s) => {
          if (s.worker === null || s.pid === 0) return;
          const m = await this.#request(s, (seq) => ({ t: 'snapshot', seq }), SNAPSHOT_TIMEOUT_MS).catch(() => null);
          if (m?.t === 'snapshot') s.snapshot = m.snapshot;
        }),
      );
      this.#refreshedAt = performance.now();
    })().finally(() => {
      this.#refreshing = null;
    });
    return this.#refreshing;
  }

  /** The primary's snapshot with the workers' connection counters (from the last `refresh`). */
  snapshot(): RuntimeSnapshot {
    const list = this.#slots.map((s) => s.snapshot).filter((x): x is RuntimeSnapshot => x !== null);
    return mergeSnapshots(this.#app!.runtime.snapshot(), list);
  }

  /**
   * GET /api/sessions: every worker's matching connections, fetched now (bounded wait; a worker that does not answer
   * in time is counted in `workersMissing`), merged oldest first. Each worker sends at most `limit`.
   */
  async sessions(query: SessionQuery): Promise<SessionList> {
    const lists: SessionList[] = [listSessions(this.#app!.runtime.live, query)];
    let missing = 0;
    await Promise.all(
      this.#slots.map(async (s) => {
        if (s.worker === null || s.pid === 0) return;
        const m = await this.#request(s, (seq) => ({ t: 'sessions', seq, query }), SNAPSHOT_TIMEOUT_MS).catch(() => null);
        if (m?.t === 'sessions') lists.push(m.list);
        else missing++;
      }),
    );
    return mergeSessionLists(lists, query.limit, missing);
  }

  get workers(): WorkerStatus[] {
    return this.#slots.map((s) => ({
      index: s.index,
      pid: s.pid,
      startedAt: s.startedAt,
      restarts: s.restarts,
      connections: s.snapshot?.connections.current ?? 0,
    }));
  }

  // ---- workers ----

  #fork(slot: Slot): Promise<void> {
    const app = this.#app!;
    const fds = inheritedDescriptorCount();
    const w = cluster.fork({ LICPROXY_WORKER: String(slot.index), ...(fds > 0 ? { [WORKER_FDS_ENV]: String(fds) } : {}) });
    slot.worker = w;
    slot.pid = 0;
    slot.startedAt = Date.now();
    w.on('message', (m: unknown) => {
      if (isToPrimary(m)) this.#received(w, m);
    });
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        w.process.kill('SIGKILL');
        reject(new LpxError('LPX_ERR_LISTEN', `worker ${slot.index} did not start within ${START_TIMEOUT_MS / 1000}s`));
      }, START_TIMEOUT_MS);
      const onMessage = (m: unknown): void => {
        if (!isToPrimary(m)) return;
        if (m.t === 'hello') {
          // States as of now: a change after this goes out in `servers` messages, which follow in order.
          const states: MirrorEntry[] = [];
          for (const p of app.config.pools) {
            for (const s of app.runtime.pool(p.name)?.servers ?? []) states.push([p.name, s.name, s.mirrorState()]);
          }
          w.send({ t: 'start', index: slot.index, workers: this.#slots.length, config: app.config, states, pretty: this.#pretty } satisfies ToWorker);
          return;
        }
        if (m.t !== 'ready' && m.t !== 'failed') return;
        clearTimeout(timer);
        w.off('message', onMessage);
        w.off('exit', onExit);
        if (m.t === 'ready') {
          slot.pid = m.pid;
          resolve();
        } else reject(new LpxError('LPX_ERR_LISTEN', m.error));
      };
      const onExit = (code: number | null, signal: string | null): void => {
        clearTimeout(timer);
        w.off('message', onMessage);
        reject(new LpxError('LPX_ERR_LISTEN', `worker ${slot.index} exited while starting (${signal ?? `code ${code}`})`));
      };
      w.on('message', onMessage);
      w.once('exit', onExit);
    });
  }

  #received(w: Worker, m: ToPrimary): void {
    const broker = this.#broker!;
    switch (m.t) {
      case 'aff-ask':
        return broker.ask(w.id, m.id, m.pool, m.ip);
      case 'aff-bind':
        return broker.bind(w.id, m.id, m.pool, m.ip, m.server);
      case 'aff-release':
        return broker.release(w.id, m.id);
      case 'report':
        return this.#app!.runtime.server(m.pool, m.server)?.monitor?.reportFailure(m.reason);
      case 'applied':
      case 'sessions':
      case 'snapshot': {
        const done = this.#pending.get(m.seq);
        this.#pending.delete(m.seq);
        return done?.(m);
      }
      case 'hello':
      case 'ready':
      case 'failed':
        return; // the start-up handshake, handled in #fork
    }
  }

  #exited(w: Worker, code: number | null, signal: string | null): void {
    this.#broker?.workerGone(w.id);
    const slot = this.#slots.find((s) => s.worker === w);
    if (!slot) return;
    slot.worker = null;
    slot.pid = 0;
    slot.snapshot = null;
    if (this.#stopping) return;
    const lived = Date.now() - slot.startedAt;
    slot.crashes = lived < CRASH_WINDOW_MS ? slot.crashes + 1 : 0;
    const delay = Math.min(MAX_RESTART_DELAY_MS, slot.crashes <= 1 ? 0 : 500 * 2 ** (slot.crashes - 2));
    const how = signal ?? (code === null ? 'its IPC channel closed' : `code ${code}`);
    this.#log.error({ worker: slot.index, pid: w.process.pid, exit: how, restartInMs: delay }, `worker ${slot.index} died (${how}): its connections are lost; replacing it`);
    this.#app!.runtime.events.add({ kind: 'worker', reason: `worker ${slot.index} (pid ${w.process.pid}) died (${how}); replaced` });
    const timer = setTimeout(() => {
      if (this.#stopping) return;
      slot.restarts++;
      this.#fork(slot).then(
        () => this.#log.info({ worker: slot.index, pid: slot.pid }, `worker ${slot.index} replaced`),
        (err: unknown) => this.#log.error({ worker: slot.index, error: errorMessage(err) }, `worker ${slot.index} failed to start`),
      );
    }, delay);
    timer.unref();
  }

  #request(slot: Slot, make: (seq: number) => ToWorker, timeoutMs: number): Promise<ToPrimary> {
    const w = slot.worker;
    if (w === null) return Promise.reject(new Error('no worker'));
    const seq = ++this.#seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(seq);
        reject(new Error(`no answer within ${timeoutMs}ms`));
      }, timeoutMs);
      this.#pending.set(seq, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      w.send(make(seq));
    });
  }

  #broadcast(m: ToWorker): void {
    for (const s of this.#slots) if (s.worker !== null && s.worker.isConnected()) s.worker.send(m);
  }

  #sendTo(workerId: number, m: ToWorker): void {
    const w = cluster.workers?.[workerId];
    if (w !== undefined && w.isConnected()) w.send(m);
  }
}

/**
 * Listening sockets passed by systemd (socket activation) go to every worker at the same descriptor numbers (3, 4,
 * ...; the IPC channel after them), and each worker listens on its own copy: the sockets stay open in the primary
 * and in systemd whatever happens to a worker, where a socket node:cluster listened on for them would close with
 * the last of them.
 */
function passedSocketsStdio(): { stdio?: (number | 'inherit' | 'ipc')[] } {
  const n = inheritedDescriptorCount();
  if (n === 0) return {};
  return { stdio: ['inherit', 'inherit', 'inherit', ...Array.from({ length: n }, (_, i) => 3 + i), 'ipc'] };
}

function exitOf(w: Worker): Promise<void> {
  return new Promise((resolve) => {
    if (w.isDead()) return resolve();
    w.once('exit', () => resolve());
  });
}

/**
 * Workers hold the connections: a 1 MiB young generation (V8 lets it grow to 16 MiB) keeps what a held connection
 * costs in RSS lower, 2.2 against 2.85 KiB per connection, at no measured CPU cost (`bench/light-upstream.ts
 * --ab-node-args=--max-semi-space-size=1`, bench/results/perf-vs-haproxy.md): the young garbage of a burst of
 * connections is collected sooner instead of sitting in a larger semi-space. The operator's own setting wins.
 */
export function youngGenerationArgs(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const set = [...execArgv, nodeOptions ?? ''].some((a) => a.includes('semi-space-size'));
  return set ? [] : ['--max-semi-space-size=1'];
}
