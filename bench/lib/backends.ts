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

export async function startLicdBackends(count: number, dir: string): Promise<Backends> {
  const children: ChildHandle[] = [];
  const upstreams: Upstream[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const name = `licd${i}`;
      const license = await freePort();
      const tokens = await freePort();
      const file = join(dir, `${name}.yaml`);
      writeFileSync(
        file,
        stringify({
          server: { name: `b${i}`, host: '127.0.0.1', ports: { license, tokens }, heartbeat_timeout: '1h' },
          features: [{ name: BENCH_FEATURE, count: BENCH_SEATS }],
        }),
      );
      const child = startChild({
        name,
        command: process.execPath,
        args: [join(REPO, 'bin/licd.js'), '-c', file, '--log-level', 'warn'],
        cwd: REPO,
        logFile: join(dir, `${name}.log`),
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
