/**
 * One pool of 1000 servers checked every second (tcp checks against four real licd processes, 250 servers each):
 * proxied checkouts keep flowing while the checks run, none fails, and every server is checked round after round
 * and stays UP. The figures are printed: run alone with --verbose to read them. How far the checks delay the event
 * loop is a figure, not a threshold (a p99 limit fails on a loaded machine): bench/check-loop.ts.
 *
 * The balancer runs in this process (as the other failover tests do), with the load's clients: the event-loop
 * delay measured here is the balancer's plus its clients', an upper bound.
 */
import test from 'ava';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { SessionLoad } from '../../bench/lib/failover/session-load.ts';
import { waitFor } from '../helpers/wait.ts';
import { spawnServer, startBalancer } from './support.ts';

const SERVERS = 1_000;
const BACKENDS = 4;
const WINDOW_MS = 5_000;
const RATE = 50;

const ms = (ns: number) => Math.round(ns / 1e5) / 10;

test('1000 servers checked at 1s: event loop stays responsive and proxied checkouts keep flowing', async (t) => {
  t.timeout(120_000);
  const backends = await Promise.all(Array.from({ length: BACKENDS }, (_, i) => spawnServer(t, { name: `b${i}` })));
  const servers = Array.from({ length: SERVERS }, (_, i) => `      - { name: s${i}, address: 127.0.0.1:${backends[i % BACKENDS]!.ports.license} }`);
  const app = await startBalancer(
    t,
    `
global: { log_level: silent }
pools:
  big:
    check: { type: tcp, interval: 1s, fast_interval: 250ms, down_interval: 5s, timeout: 500ms }
    servers:
${servers.join('\n')}
frontends:
  - { name: big, listen: 127.0.0.1:0, pool: big }
`,
  );
  const pool = app.runtime.pool('big')!;
  await waitFor(() => pool.usableCount() === SERVERS, { timeout: 20_000, interval: 20, what: 'every server UP' });
  // Past the start-up burst and the one-off move of every server to its random phase.
  const upAt = Date.now();
  await waitFor(() => Date.now() - upAt >= 1_500, { timeout: 5_000, interval: 20, what: 'steady state' });

  const checkedBefore = pool.servers.reduce((n, s) => n + s.counters.failedChecks, 0);
  const lastChecks = () => pool.servers.map((s) => s.lastCheck?.at ?? 0);
  const before = lastChecks();
  const eld = monitorEventLoopDelay({ resolution: 10 });
  const load = new SessionLoad({ port: app.runtime.port('big'), rate: RATE, timeoutMs: 5_000, maxDurationMs: WINDOW_MS });
  t.teardown(() => load.stop());
  const windowStart = Date.now();
  eld.enable();
  load.start();
  await waitFor(() => Date.now() - windowStart >= WINDOW_MS, { timeout: WINDOW_MS + 10_000, interval: 50, what: 'the measuring window' });
  eld.disable();
  await load.stop();
  const after = lastChecks();

  const failed = load.records.filter((r) => r.error !== null);
  const served = pool.servers.filter((s) => s.counters.total > 0).length;
  const rechecked = after.filter((at, i) => at > before[i]!).length;
  const failedChecks = pool.servers.reduce((n, s) => n + s.counters.failedChecks, 0) - checkedBefore;
  t.log(
    `event-loop delay over ${WINDOW_MS}ms: p50 ${ms(eld.percentile(50))}ms, p99 ${ms(eld.percentile(99))}ms, max ${ms(eld.max)}ms; ` +
      `${load.records.length} checkouts (${failed.length} failed) spread over ${served} pool servers; ${rechecked}/${SERVERS} servers re-checked, ${failedChecks} failed checks`,
  );
  t.deepEqual(failed.map((r) => r.error), []);
  t.true(load.records.length > 0, 'checkouts went through while the checks ran');
  // Polled, not judged on the window: a stall of the shared machine can time checks out (a server then waits
  // down_interval), and it delays rounds; neither may stop the checks or keep a healthy server DOWN.
  await waitFor(() => lastChecks().every((at, i) => at > before[i]!), { timeout: 30_000, interval: 50, what: 'every server checked again' });
  await waitFor(() => pool.usableCount() === SERVERS, { timeout: 30_000, interval: 50, what: 'every server UP' });
});
