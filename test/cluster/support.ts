/** Runs `licproxy run` with `global.workers` as a child process and reads what it logs and serves. */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { spawnLicproxy, type SpawnOptions } from '../helpers/licproxy-run.ts';
import { freeFrontendPorts } from '../helpers/ports.ts';
import { getJson } from '../helpers/stats.ts';
import { waitFor } from '../helpers/wait.ts';

export const TOKEN = 'cluster-test-token-0123456789';

export interface RunningCluster {
  child: ChildProcess;
  dir: string;
  file: string;
  lines: () => Record<string, unknown>[];
  stderr: () => string;
  exited: Promise<number | string>;
  stats: { host: string; port: number };
  port: (frontend: string) => Promise<number>;
  json: () => Promise<StatsJson>;
  workerPids: () => Promise<number[]>;
}

export interface StatsJson {
  process: { pid: number; workers?: { index: number; pid: number; restarts: number; connections: number }[] };
  frontends: { name: string; status: string; scur: number; stot: number }[];
  pools: {
    name: string;
    affinity: { bindings: number; hits: number; misses: number };
    servers: { name: string; status: string; scur: number; stot: number }[];
  }[];
}

export interface ClusterOptions extends SpawnOptions {
  /** Run from this cluster's configuration file (a replacement for a killed primary); its folder stays its. */
  sameFileAs?: RunningCluster;
}

/** `yaml` gets the token file path; the stats listener must be `127.0.0.1:0`. */
export async function runCluster(t: ExecutionContext, yaml: (tokenFile: string) => string, opts: ClusterOptions = {}): Promise<RunningCluster> {
  const dir = opts.sameFileAs?.dir ?? mkdtempSync(join(tmpdir(), 'licproxy-cluster-'));
  const tokenFile = join(dir, 'admin.token');
  const file = join(dir, 'licproxy.yaml');
  if (!opts.sameFileAs) {
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    writeFileSync(file, await freeFrontendPorts(yaml(tokenFile)));
  }
  let pids: number[] = [];
  const { child, lines, stderr, exited } = spawnLicproxy(
    t,
    file,
    () => {
      // A killed primary's workers outlive it (they forward what they hold, global.orphan_grace): end them here.
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
      if (!opts.sameFileAs) rmSync(dir, { recursive: true, force: true });
    },
    {},
    opts,
  );
  const err = (): string => stderr();
  const alive = (): void => {
    if (child.exitCode !== null) throw new Error(`licproxy exited ${child.exitCode}: ${err()}`);
  };
  // waitFor retries a throwing condition; an exited balancer is final, so its error is thrown at once.
  const stats = await waitFor(
    () => {
      if (child.exitCode !== null) return 'exited' as const;
      const l = lines().find((x) => x.msg === 'stats listening');
      if (!l) return null;
      const u = new URL(String(l.url));
      return { host: u.hostname, port: Number(u.port) };
    },
    { timeout: 30_000, what: 'stats listening' },
  );
  if (stats === 'exited') throw new Error(`licproxy exited ${child.exitCode}: ${err()}`);
  await waitFor(() => (alive(), lines().some((x) => x.msg === 'licproxy running')), { timeout: 30_000, what: 'licproxy running' });
  const json = async (): Promise<StatsJson> => (await getJson<StatsJson>(stats, '/stats.json')).json;
  const workerPids = async (): Promise<number[]> => {
    pids = ((await json()).process.workers ?? []).map((w) => w.pid);
    return pids;
  };
  await workerPids();
  const port = (frontend: string): Promise<number> =>
    waitFor(
      () => {
        alive();
        const l = lines().find((x) => x.msg === 'listening' && x.frontend === frontend);
        return l ? Number(String(l.listen).split(':').pop()) : 0;
      },
      { timeout: 20_000, what: `frontend ${frontend} listening` },
    );
  return { child, dir, file, lines, stderr, exited, stats, port, json, workerPids };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The `connection closed` log lines (workers write them). */
export function closedLines(c: RunningCluster): Record<string, unknown>[] {
  return c.lines().filter((l) => l.msg === 'connection closed');
}
