/**
 * A worker process of the cluster (`global.workers` > 1): accepts clients on the frontends' ports (the primary's
 * listening sockets, shared round robin by node:cluster) and forwards them. Its servers mirror the primary's
 * health and admin state; affinity by source asks the primary's table; limits are this worker's share. It logs
 * its own connection lines; server state changes are the primary's to log.
 */
import cluster from 'node:cluster';
import { errorMessage } from '../../common/errors.ts';
import { createLogger, silentLogger } from '../../common/logger.ts';
import type { ProxyConfig } from '../../config/proxy-config.ts';
import { createAffinity } from '../affinity/create-affinity.ts';
import { adoptInheritedSockets } from '../inherited-sockets.ts';
import { ProxyRuntime, type PreparedApply } from '../runtime.ts';
import { listSessions } from '../session-list.ts';
import { isToWorker, type MirrorEntry, type ToPrimary, type ToWorker } from './messages.ts';
import { AffinityClient, RemoteSourceAffinity } from './remote-affinity.ts';
import { MirrorBook, RemoteMonitor } from './remote-monitor.ts';
import { shareLimits } from './share-limits.ts';

/** After the grace period the runtime closes what is left; this only guards against a hung stop. */
const EXIT_GUARD_MS = 5_000;

export async function runWorker(): Promise<void> {
  // node:cluster ends a worker at once when its channel closes unasked (the primary died): that would cut every
  // connection it forwards. This worker decides for itself (the 'disconnect' handler below); a channel lost before
  // the start message leaves nothing to keep.
  cluster.worker!.exitedAfterDisconnect = true;
  const beforeStart = (): void => process.exit(0);
  process.once('disconnect', beforeStart);
  // The primary's listening sockets from systemd, at the same descriptor numbers (none without socket activation).
  adoptInheritedSockets();
  // A send can still fail after the check (the primary died, its 'disconnect' not seen yet): with no callback that
  // error would be thrown as the process's 'error' event and end the worker with its connections.
  const send = (m: ToPrimary): void => {
    if (process.connected) process.send!(m, undefined, undefined, ignoreSendError);
  };
  const start = await firstMessage();
  process.off('disconnect', beforeStart);
  const { index, workers } = start;
  const log = createLogger({
    level: start.config.global.logLevel,
    pretty: start.pretty,
    name: 'licproxy',
    flushMs: 100,
    bindings: { worker: index },
    sharedStdout: true,
  });
  // node:cluster's own messages (a listener closing) are sent without a callback: a send failing as the primary
  // dies is emitted here, and would end the worker if nothing listened.
  process.on('error', (err: Error) => log.warn({ error: err.message }, 'message to the primary lost'));
  const book = new MirrorBook();
  const affinity = new AffinityClient(send);
  const runtime = new ProxyRuntime(shareLimits(start.config, index, workers), {
    log,
    controlLog: silentLogger,
    monitorFactory: (server, pool) => new RemoteMonitor(server, pool.name, book, send),
    affinityFactory: (config, host) => (config.by === 'source' ? new RemoteSourceAffinity(config, host, affinity) : createAffinity(config, host)),
  });
  const mirror = (states: readonly MirrorEntry[]): void => {
    for (const [pool, server, state] of states) {
      book.set(pool, server, state);
      runtime.server(pool, server)?.mirror(state);
    }
  };
  mirror(start.states);

  let stopping = false;
  const stop = (graceMs: number): void => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(0), graceMs + EXIT_GUARD_MS).unref();
    void runtime.stop(graceMs).finally(() => log.flush(() => process.exit(0)));
  };

  // A reload prepared here, waiting for the primary's `commit` (every worker and the primary are ready) or `abort`.
  let pending: { apply: PreparedApply; config: ProxyConfig } | null = null;
  const prepare = async (config: ProxyConfig): Promise<string | null> => {
    pending?.apply.abort();
    pending = null;
    try {
      pending = { apply: await runtime.prepare(shareLimits(config, index, workers)), config };
      return null;
    } catch (err) {
      return errorMessage(err);
    }
  };

  process.on('message', (m: unknown) => {
    if (!isToWorker(m)) return;
    switch (m.t) {
      case 'servers':
        return mirror(m.states);
      case 'aff':
        return affinity.answered(m.id, m.server);
      case 'apply':
        return void prepare(m.config).then((error) => send({ t: 'applied', seq: m.seq, error }));
      case 'commit': {
        const p = pending;
        pending = null;
        if (p) {
          p.apply.commit();
          if (log.level !== 'silent') log.level = p.config.global.logLevel;
        }
        return;
      }
      case 'abort': {
        const p = pending;
        pending = null;
        return p?.apply.abort();
      }
      case 'snapshot':
        return send({ t: 'snapshot', seq: m.seq, snapshot: runtime.snapshot() });
      case 'sessions': {
        const list = listSessions(runtime.live, m.query);
        for (const s of list.sessions) s.worker = index;
        return send({ t: 'sessions', seq: m.seq, list });
      }
      case 'stop':
        return stop(m.graceMs);
      case 'start':
        return;
    }
  });
  // The primary died (its IPC channel closed without a `stop`): stop accepting (closing this worker's listening
  // handles, so the replacement primary can bind the port and its workers take the new clients), forward what is
  // held until it ends or global.orphan_grace passes, then exit. What needed the primary is decided here from now:
  // affinity asks in flight are answered "no binding" (the connection is balanced here), passive health reports
  // and counters go nowhere, server states stay as last mirrored.
  process.once('disconnect', () => {
    if (stopping) return;
    const grace = runtime.config.global.orphanGrace;
    log.warn(
      { connections: runtime.live.size, graceMs: grace },
      `the primary is gone (IPC channel closed): stopped accepting; forwarding the ${runtime.live.size} connections held until they end or orphan_grace passes`,
    );
    affinity.orphaned();
    stop(grace);
  });
  // SIGTERM to a worker (an orphan, or `systemctl kill` signalling every process of the unit): a graceful stop.
  process.on('SIGTERM', () => stop(runtime.config.global.grace));
  process.on('SIGINT', () => stop(runtime.config.global.grace));
  // A reload is the primary's (it sends the configuration); a HUP sent to the whole process group changes nothing here.
  process.on('SIGHUP', () => {});

  try {
    await runtime.start();
  } catch (err) {
    send({ t: 'failed', error: errorMessage(err) });
    log.flush(() => process.exit(1));
    return;
  }
  send({ t: 'ready', pid: process.pid });
}

function ignoreSendError(): void {}

function firstMessage(): Promise<Extract<ToWorker, { t: 'start' }>> {
  return new Promise((resolve) => {
    const on = (m: unknown): void => {
      if (!isToWorker(m)) return;
      if (m.t === 'stop') process.exit(0);
      if (m.t !== 'start') return;
      process.off('message', on);
      resolve(m);
    };
    process.on('message', on);
    process.send!({ t: 'hello' } satisfies ToPrimary);
  });
}
