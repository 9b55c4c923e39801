/**
 * The servers behind every target: licd child processes for the license workloads, the sink/source/echo server
 * for the byte-level ones. Each runs in its own process so the backend's CPU is never the bench's or the proxy's.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startChild, waitForPort, type ChildHandle } from './child.ts';
import { REPO, tsArgs } from './node-script.ts';
import { freePort } from './ports.ts';
import type { Upstream } from './targets/target.ts';

/** The feature every license workload checks out; the count is large enough that nothing is ever denied. */
export const BENCH_FEATURE = 'BENCH';
const BENCH_SEATS = 10_000_000;

export interface Backends {
  kind: 'licd' | 'sink';
  upstreams: Upstream[];
  children: ChildHandle[];
  /** Non-null once a backend has died. */
  failure(): string | null;
  stop(): Promise<void>;
}

function group(kind: Backends['kind'], upstreams: Upstream[], children: ChildHandle[]): Backends {
  return {
    kind,
    upstreams,
    children,
    failure() {
      const dead = children.find((c) => c.exited);
      return dead ? `backend ${dead.name} exited (${dead.exited!.code ?? dead.exited!.signal}):\n${dead.logTail()}` : null;
    },
    async stop() {
      await Promise.all(children.map((c) => c.stop()));
    },
  };
}

export interface LicdChild {
  child: ChildHandle;
  license: number;
  tokens: number;
}

/**
 * Writes a licd file on two free ports into `dir` and starts licd on it as a child process (logging to
 * `<name>.log`); the caller waits for its port. Every bench that needs a license server starts it here.
 */
export async function spawnLicdChild(
  dir: string,
  name: string,
  opts: { serverName?: string; features: object[]; heartbeatTimeout?: string; logLevel?: string },
): Promise<LicdChild> {
  const license = await freePort();
  const tokens = await freePort();
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    stringify({
      server: { name: opts.serverName ?? name, host: '127.0.0.1', ports: { license, tokens }, heartbeat_timeout: opts.heartbeatTimeout ?? '1h' },
      features: opts.features,
    }),
  );
  const child = startChild({
    name,
    command: process.execPath,
    args: [join(REPO, 'bin/licd.js'), '-c', file, '--log-level', opts.logLevel ?? 'warn'],
    cwd: REPO,
    logFile: join(dir, `${name}.log`),
  });
  return { child, license, tokens };
}

export async function startLicdBackends(count: number, dir: string): Promise<Backends> {
  const children: ChildHandle[] = [];
  const upstreams: Upstream[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const { child, license } = await spawnLicdChild(dir, `licd${i}`, {
        serverName: `b${i}`,
        features: [{ name: BENCH_FEATURE, count: BENCH_SEATS }],
      });
      children.push(child);
      upstreams.push({ host: '127.0.0.1', port: license });
    }
    for (let i = 0; i < count; i++) await waitForPort('127.0.0.1', upstreams[i]!.port, children[i]!);
  } catch (err) {
    await Promise.all(children.map((c) => c.stop()));
    throw err;
  }
  return group('licd', upstreams, children);
}

export async function startSinkBackend(dir: string): Promise<Backends> {
  const port = await freePort();
  const child = startChild({
    name: 'sink',
    command: process.execPath,
    args: tsArgs('bench/lib/sink-server.ts', [String(port)]),
    cwd: REPO,
    logFile: join(dir, 'sink.log'),
  });
  try {
    await waitForPort('127.0.0.1', port, child);
  } catch (err) {
    await child.stop();
    throw err;
  }
  return group('sink', [{ host: '127.0.0.1', port }], [child]);
}
