/**
 * Cost of sharing source-affinity bindings through Redis (SPEC 9) on the accept path: short connections (connect,
 * read the server's first line, close) through a licproxy without `cluster:` (A) and one with it (B), alternating
 * A B A B in the same run so machine noise hits both alike; then B again with Redis stopped (SIGSTOP), where every
 * new connection waits `cluster.timeout` and is placed on local state. Both balancers run in this process, the
 * Redis is a redis-server child on loopback.
 *
 * Usage: node --import tsx bench/cluster-redis.ts [--reps 3] [--conns 2000] [--sources 200]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { silentLogger } from '../src/common/logger.ts';
import type { ClusterConfig } from '../src/config/cluster-config.ts';
import { DEFAULTS, type ProxyConfig } from '../src/config/proxy-config.ts';
import { ProxyApp } from '../src/proxy/app.ts';
import { ClusterState } from '../src/proxy/cluster-state/cluster-state.ts';
import { freePort } from './lib/ports.ts';

const { values: flags } = parseArgs({ options: { reps: { type: 'string', default: '3' }, conns: { type: 'string', default: '2000' }, sources: { type: 'string', default: '200' } } });
const reps = Math.max(1, Number(flags.reps));
const conns = Math.max(1, Number(flags.conns));
const sources = Math.max(1, Math.min(60_000, Number(flags.sources)));

const which = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
if (which.status !== 0) {
  process.stdout.write('redis-server is not installed: nothing measured\n');
  process.exit(0);
}
const dir = mkdtempSync(join(tmpdir(), 'bench-cluster-'));
const redisPort = await freePort();
const redis = spawn(which.stdout.trim(), ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
const done = (): void => {
  redis.kill('SIGCONT');
  redis.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
};
process.on('exit', done);

const backend = createServer((s) => {
  s.on('error', () => {});
  s.end('s1\n');
});
await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
const backendPort = (backend.address() as AddressInfo).port;

function config(cluster: ClusterConfig | null): ProxyConfig {
  const pool = {
    ...DEFAULTS.pool,
    name: 'lic',
    ports: { main: backendPort },
    affinity: { by: 'source' as const, ttl: 3_600_000, maxBindings: 1_000_000 },
    check: { ...DEFAULTS.pool.check, type: 'none' as const },
    servers: [{ ...DEFAULTS.server, name: 's1', host: '127.0.0.1', ports: { main: backendPort } }],
  } as unknown as ProxyConfig['pools'][number];
  const fe = { ...DEFAULTS.frontend, name: 'lic', pool: 'lic', port: 'main', listen: { host: '127.0.0.1', port: 0 } } as unknown as ProxyConfig['frontends'][number];
  return { file: 'bench', global: { ...DEFAULTS.global, logLevel: 'silent' }, stats: null, pools: [pool], frontends: [fe], daemons: [], ...(cluster ? { cluster } : {}) } as ProxyConfig;
}

const plain = await ProxyApp.start({ config: config(null), log: silentLogger });
const cc: ClusterConfig = { name: 'bench', instance: 'b1', redis: { kind: 'url', url: `redis://127.0.0.1:${redisPort}/0` }, timeout: 50 };
const shared = new ClusterState(cc, silentLogger);
const clustered = await ProxyApp.start({ config: config(cc), log: silentLogger, services: [shared], cluster: shared, runtime: { affinityFactory: shared.affinityFactory } });

function one(port: number, i: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress: `127.20.${Math.floor((i % sources) / 250)}.${(i % sources) % 250 + 1}` });
    s.on('data', () => {});
    s.once('error', reject);
    s.once('close', () => resolve());
  });
}

/** Connections per second, 8 at a time. */
async function run(app: ProxyApp, n: number): Promise<number> {
  const port = app.runtime.port('lic');
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < n) await one(port, next++);
  }));
  return n / ((performance.now() - t0) / 1000);
}

await run(plain, 200);
await run(clustered, 200);
const a: number[] = [];
const b: number[] = [];
for (let r = 0; r < reps; r++) {
  a.push(await run(plain, conns));
  b.push(await run(clustered, conns));
}
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
redis.kill('SIGSTOP');
const stopped = await run(clustered, Math.min(conns, 400));
const errors = shared.status().redis.errors;
const line = (name: string, v: number): string => `${name.padEnd(44)} ${v.toFixed(0).padStart(7)} conn/s\n`;
process.stdout.write(
  `short connections through licproxy, affinity by source, ${sources} source addresses, 8 at a time (median of ${reps} x ${conns})\n` +
    line('A: no cluster', median(a)) +
    line('B: cluster, bindings shared in Redis', median(b)) +
    `B / A: ${(median(b) / median(a)).toFixed(2)}\n` +
    line('B with Redis stopped (SIGSTOP), timeout 50ms', stopped) +
    `Redis errors counted while stopped: ${errors} (every connection completed)\n`,
);
await plain.stop(0);
await clustered.stop(0);
backend.close();
process.exit(0);
