/**
 * Shared pieces of the failover tests: the real balancer (ProxyApp with the real health monitors) started from
 * YAML text, licd child processes that a test may SIGKILL or SIGSTOP, and readers of the balancer's events.
 */
import type { ExecutionContext } from 'ava';
import { silentLogger } from '../../src/common/logger.ts';
import { parseProxyConfig } from '../../src/config/proxy-schema.ts';
import { createMonitorFactory } from '../../src/health/health-monitor.ts';
import { ProxyApp } from '../../src/proxy/app.ts';
import type { HealthSubject } from '../../src/health/types.ts';
import type { ProxyEvent } from '../../src/proxy/event-log.ts';
import type { MonitorFactory } from '../../src/proxy/pool.ts';
import type { ServerSnapshot } from '../../src/proxy/server.ts';
import { spawnLicd, type FeatureSpec, type LicdSpec, type SpawnedLicd } from '../helpers/licd.ts';
import { freeFrontendPorts } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

/** Enough seats that a load never meets DENIED. */
export const SEATS: FeatureSpec[] = [{ name: 'LS-DYNA', version: '2025.1', count: 100_000 }];

/** One thing a server's monitor did, in order: a passive failure, a check result, or a transition. */
export interface HealthTrace {
  server: string;
  at: number;
  kind: 'passive' | 'check' | 'transition';
  ok?: boolean;
  state?: 'up' | 'down';
  reason: string;
  /** The server's connections so far (counters.total), read in the same tick. */
  total: number;
}

/**
 * The real monitors, with every passive failure, check result and transition recorded synchronously, in the tick
 * it happens (the balancer's event log has the transitions, but not the attempts that led to them).
 */
export function tracedMonitors(): { factory: MonitorFactory; trace: HealthTrace[] } {
  const trace: HealthTrace[] = [];
  const base = createMonitorFactory();
  const factory: MonitorFactory = (server, pool) => {
    const note = (e: Omit<HealthTrace, 'server' | 'at' | 'total'>) => trace.push({ server: server.name, at: Date.now(), total: server.counters.total, ...e });
    const subject: HealthSubject & { name: string } = {
      name: server.name,
      host: server.host,
      get ports() {
        return server.ports;
      },
      setHealth(state, reason) {
        note({ kind: 'transition', state, reason });
        server.setHealth(state, reason);
      },
      recordCheck(result) {
        note({ kind: 'check', ok: result.ok, reason: result.reason });
        server.recordCheck(result);
      },
    };
    const monitor = base(subject, pool);
    const reportFailure = monitor.reportFailure.bind(monitor);
    monitor.reportFailure = (reason) => {
      note({ kind: 'passive', ok: false, reason });
      reportFailure(reason);
    };
    return monitor;
  };
  return { factory, trace };
}

/** Starts the balancer from YAML text, with the real monitors; stopped at teardown. */
export async function startBalancer(t: ExecutionContext, yaml: string, opts: { monitorFactory?: MonitorFactory } = {}): Promise<ProxyApp> {
  const config = parseProxyConfig('failover-test.yaml', await freeFrontendPorts(yaml));
  const app = await ProxyApp.start({ config, log: silentLogger, monitorFactory: opts.monitorFactory ?? createMonitorFactory() });
  t.teardown(() => app.stop(0));
  return app;
}

/**
 * A licd child stopped at teardown, SIGCONT first (a stopped process must run to exit cleanly). `faults.stop()`
 * and `faults.cont()` track whether it is stopped.
 */
export async function spawnServer(t: ExecutionContext, spec: LicdSpec): Promise<SpawnedLicd & { sigstop(): void; sigcont(): void }> {
  const licd = await spawnLicd({ features: SEATS, heartbeatTimeout: '10m', ...spec });
  let stopped = false;
  t.teardown(async () => {
    if (stopped) licd.child.kill('SIGCONT');
    await licd.stop();
  });
  return Object.assign(licd, {
    sigstop() {
      stopped = true;
      licd.child.kill('SIGSTOP');
    },
    sigcont() {
      licd.child.kill('SIGCONT');
      stopped = false;
    },
  });
}

export function serverSnap(app: ProxyApp, pool: string, server: string): ServerSnapshot {
  const s = app.runtime.server(pool, server);
  if (!s) throw new Error(`no server ${pool}/${server}`);
  return s.snapshot();
}

/** The first state change of `pool/server` to `to` at or after `since` (Date.now()). */
export function findEvent(app: ProxyApp, pool: string, server: string, to: string, since = 0): ProxyEvent | undefined {
  return app.runtime.eventList().find((e) => e.kind === 'server' && e.pool === pool && e.server === server && e.to === to && e.time >= since);
}

export function waitEvent(app: ProxyApp, pool: string, server: string, to: string, since: number, timeout = 15_000): Promise<ProxyEvent> {
  return waitFor(() => findEvent(app, pool, server, to, since), { timeout, interval: 5, what: `${pool}/${server} -> ${to}` });
}

/** Waits until every named server of the pool is UP (health checked) and new clients go to `active`. */
export async function waitSettled(app: ProxyApp, pool: string, up: string[], active?: string, timeout = 15_000): Promise<void> {
  await waitFor(
    () => {
      const p = app.runtime.pool(pool)!.snapshot();
      const ok = up.every((n) => p.servers.find((s) => s.name === n)?.status === 'UP');
      return ok && (active === undefined || p.activeServer === active || (p.activeServer === null && p.activeTier === 0));
    },
    { timeout, interval: 10, what: `pool ${pool}: ${up.join(', ')} UP${active ? `, new clients to ${active}` : ''}` },
  );
}

/** Lets `ms` pass, for assertions that something does NOT happen within a time (polling the clock, not a sleep). */
export function elapse(ms: number): Promise<unknown> {
  const until = Date.now() + ms;
  return waitFor(() => Date.now() >= until, { timeout: ms + 5_000, interval: Math.min(50, ms), what: `${ms}ms to pass` });
}
