/**
 * Real redis-server processes and real licproxy instances (in-process apps, each with its own Redis link, stats
 * listener and admin API) for the cluster-state tests (SPEC 9). redis-server runs in the foreground on a free
 * loopback port with no persistence, in a temporary directory; where it is not installed the tests skip.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNamed } from '../helpers/backend.ts';
import type { ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import { StatsService } from '../../src/cli/services/stats-service.ts';
import type { Logger } from '../../src/common/logger.ts';
import type { ClusterConfig } from '../../src/config/cluster-config.ts';
import type { ProxyConfig } from '../../src/config/proxy-config.ts';
import { ProxyApp } from '../../src/proxy/app.ts';
import { ClusterState } from '../../src/proxy/cluster-state/cluster-state.ts';
import { freePort } from '../helpers/ports.ts';
import { captureLogger, makeConfig, type ConfigSpec } from '../helpers/proxy.ts';
import { waitFor } from '../helpers/wait.ts';

export const REDIS_SERVER = (() => {
  const r = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
})();

export const SKIP_REASON = 'redis-server is not installed (apt-get install redis-server): cluster-state tests skipped';

export interface RedisProcess {
  port: number;
  url: string;
  child: ChildProcess;
  /** A client for the test itself (reads and plants keys). */
  client: Redis;
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts redis-server again on the same port (empty: no persistence). */
  restart(): Promise<void>;
}

export async function startRedis(t: ExecutionContext, opts: { password?: string } = {}): Promise<RedisProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'lpx-redis-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...(opts.password ? ['--requirepass', opts.password] : [])];
  const url = `redis://${opts.password ? `:${opts.password}@` : ''}127.0.0.1:${port}/0`;
  const r: RedisProcess = {
    port,
    url,
    child: null as unknown as ChildProcess,
    client: null as unknown as Redis,
    kill: async (signal = 'SIGKILL') => {
      const c = r.child;
      if (c.exitCode !== null || c.signalCode !== null) return;
      const gone = new Promise((res) => c.once('exit', res));
      c.kill(signal);
      if (signal === 'SIGKILL' || signal === 'SIGTERM') await gone;
    },
    restart: async () => {
      r.child = spawn(REDIS_SERVER!, args, { stdio: 'ignore' });
      await waitFor(() => pingable(port), { timeout: 10_000, what: `redis-server on port ${port}` });
    },
  };
  await r.restart();
  r.client = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  r.client.on('error', () => {}); // the tests kill and stop this Redis on purpose
  t.teardown(async () => {
    r.client.disconnect();
    r.child.kill('SIGCONT');
    r.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  return r;
}

function pingable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s: Socket = connect({ host: '127.0.0.1', port });
    s.setTimeout(500, () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(false));
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => {
      s.destroy();
      resolve(/PONG|NOAUTH/.test(d.toString()));
    });
  });
}

/** A Redis Sentinel (redis-server --sentinel) watching `master` as `mymaster`. */
export async function startSentinel(t: ExecutionContext, master: RedisProcess): Promise<{ port: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'lpx-sentinel-'));
  const port = await freePort();
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(conf, `port ${port}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor mymaster 127.0.0.1 ${master.port} 1\n`);
  const child = spawn(REDIS_SERVER!, [conf, '--sentinel'], { stdio: 'ignore' });
  t.teardown(() => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  await waitFor(() => pingable(port), { timeout: 10_000, what: `sentinel on port ${port}` });
  return { port };
}

export const TOKEN = 'cluster-test-token-0123456789';

export interface Instance {
  app: ProxyApp;
  shared: ClusterState;
  stats: string;
  lines: () => Record<string, unknown>[];
  log: Logger;
}

/** A licproxy instance in this process, its stats on an ephemeral port with the admin API, sharing through `cluster`. */
export async function startInstance(t: ExecutionContext, spec: ConfigSpec, cluster: Partial<ClusterConfig> & { redisUrl?: string; instance: string }): Promise<Instance> {
  const dir = mkdtempSync(join(tmpdir(), 'lpx-inst-'));
  const tokenFile = join(dir, 'admin.token');
  writeFileSync(tokenFile, TOKEN);
  chmodSync(tokenFile, 0o600);
  const base = makeConfig(spec);
  const c: ClusterConfig = { name: cluster.name ?? 'lic-lb', instance: cluster.instance, redis: cluster.redis ?? { kind: 'url', url: cluster.redisUrl! }, timeout: cluster.timeout ?? 50 };
  const config: ProxyConfig = { ...base, stats: { listen: { host: '127.0.0.1', port: 0 }, refresh: 5_000, admin: { tokenFile, insecure: false } }, cluster: c };
  const { log, lines } = captureLogger();
  const shared = new ClusterState(c, log);
  const statsSvc = new StatsService({ log });
  const app = await ProxyApp.start({ config, log, services: [shared, statsSvc], cluster: shared, runtime: { affinityFactory: shared.affinityFactory } });
  t.teardown(async () => {
    await app.stop(0);
    rmSync(dir, { recursive: true, force: true });
  });
  const a = statsSvc.address!;
  return { app, shared, stats: `http://127.0.0.1:${a.port}`, lines, log };
}

/** Connects from `localAddress` and resolves with the first line the backend writes (its name). */
export function firstLine(port: number, localAddress: string, keep: Socket[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress });
    keep.push(s);
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i >= 0) resolve(buf.slice(0, i));
    });
    s.once('error', reject);
    s.once('close', () => reject(new Error(`closed before a line (from ${localAddress})`)));
  });
}

/**
 * Two servers s1, s2 with a license and a token port each, in one source-affinity pool with a frontend per port.
 * `reversed` lists them the other way round, so two instances' round robins disagree: without shared bindings a
 * client's two ports would split.
 */
export async function twoPortSpec(t: ExecutionContext): Promise<(reversed: boolean) => ConfigSpec> {
  const names = ['s1', 's2'];
  const ports: Record<string, { license: number; tokens: number }> = {};
  for (const n of names) ports[n] = { license: (await startNamed(t, `${n}/license`)).port, tokens: (await startNamed(t, `${n}/tokens`)).port };
  return (reversed) => ({
    pools: [
      {
        name: 'lic',
        ports: { license: 1, tokens: 1 },
        affinity: { by: 'source', ttl: 3_600_000, maxBindings: 100_000 },
        servers: (reversed ? [...names].reverse() : names).map((n) => ({ name: n, ports: ports[n]! })),
      },
    ],
    frontends: [
      { name: 'license', pool: 'lic', port: 'license' },
      { name: 'tokens', pool: 'lic', port: 'tokens' },
    ],
  });
}
