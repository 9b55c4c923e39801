/**
 * Throughput and p99 latency of the stats listener on its two machine endpoints, /metrics and /stats.json, with a
 * fake source of 100 pools x 10 servers (2 lmstat features each). The server runs in a child process so the load
 * generator (autocannon) does not share its event loop.
 * Usage: node --import tsx bench/stats-http.ts [--duration 5] [--connections 10] [--pools 100] [--servers 10]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { StatsServer } from '../src/stats/stats-server.ts';
import { FakeStatsSource, largeSnapshot } from '../test/helpers/stats.ts';

/** The part of autocannon's result used here (the package ships no types). */
interface CannonResult {
  requests: { average: number };
  latency: { p50: number; p99: number };
  throughput: { average: number };
  non2xx: number;
  errors: number;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (opts: { url: string; connections: number; duration: number }) => Promise<CannonResult>;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i === -1 ? NaN : Number(process.argv[i + 1]);
  return Number.isFinite(v) && v > 0 ? v : dflt;
}

const pools = arg('pools', 100);
const perPool = arg('servers', 10);

if (process.argv.includes('--serve')) {
  // Child: a stats server whose snapshot changes every call, as a live proxy's would (new counters, new checks).
  const base = largeSnapshot(pools, perPool);
  const source = new FakeStatsSource(base, []);
  source.snapshot = () => {
    base.at = Date.now();
    for (const p of base.pools) for (const s of p.servers) {
      s.stot++;
      s.lastCheck = { ok: true, reason: 'ok', durationMs: 5, at: base.at };
    }
    return base;
  };
  const server = new StatsServer({ host: '127.0.0.1', port: 0, source });
  const { port } = await server.start();
  process.send!({ port });
  process.on('disconnect', () => void server.stop().then(() => process.exit(0)));
} else {
  const duration = arg('duration', 5);
  const connections = arg('connections', 10);
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--serve', '--pools', String(pools), '--servers', String(perPool)], {
    execArgv: ['--import', 'tsx'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  try {
    console.log(`stats listener, ${pools} pools x ${perPool} servers, ${connections} connections, ${duration}s per path`);
    for (const path of ['/metrics', '/stats.json', '/stats.csv', '/stats']) {
      const r = await autocannon({ url: `http://127.0.0.1:${port}${path}`, connections, duration });
      const size = r.throughput.average / Math.max(1, r.requests.average);
      console.log(
        `${path.padEnd(12)} ${r.requests.average.toFixed(0).padStart(6)} req/s  p50 ${String(r.latency.p50).padStart(4)} ms  ` +
          `p99 ${String(r.latency.p99).padStart(4)} ms  ${(size / 1024).toFixed(0)} KB/response  non-2xx ${r.non2xx}  errors ${r.errors}`,
      );
    }
  } finally {
    child.disconnect();
  }
}
