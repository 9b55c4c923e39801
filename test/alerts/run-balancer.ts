/** A real `licproxy run` child on a temporary configuration, with its stats listener on a known port. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { spawnLicproxy, type LicproxyProcess } from '../helpers/licproxy-run.ts';
import { freeFrontendPorts, freePort } from '../helpers/ports.ts';
import { request } from '../helpers/stats.ts';
import { waitFor } from '../helpers/wait.ts';

export interface RunningLicproxy extends LicproxyProcess {
  dir: string;
  file: string;
  stats: { host: string; port: number };
  /** Starts the same configuration again after the first process is gone (a restart). */
  restart(): Promise<RunningLicproxy>;
}

/**
 * `body` is the configuration without `stats:` (and `global: { grace: 0s }` unless it has a `global:`) (added with a free port and `extraStats` lines); frontends written
 * `listen: 127.0.0.1:0` get free ports. `{{dir}}` is replaced by the temporary folder.
 */
export async function runBalancer(t: ExecutionContext, body: string, extraStats = '', dir?: string): Promise<RunningLicproxy> {
  const folder = dir ?? mkdtempSync(join(tmpdir(), 'lpx-alerts-'));
  if (dir === undefined) t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const statsPort = await freePort();
  const file = join(folder, 'licproxy.yaml');
  const global = /^global:/m.test(body) ? '' : 'global: { grace: 0s }\n';
  const yaml = await freeFrontendPorts(`${global}stats:\n  listen: 127.0.0.1:${statsPort}\n${extraStats}${body.replaceAll('{{dir}}', folder)}`);
  writeFileSync(file, yaml);
  const proc = spawnLicproxy(t, file);
  const stats = { host: '127.0.0.1', port: statsPort };
  await waitFor(
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`licproxy exited: ${proc.stderr()}`);
      return (await request(stats, '/health', { timeoutMs: 1_000 })).status === 200;
    },
    { timeout: 20_000, interval: 50, what: 'licproxy to serve /health' },
  );
  return { ...proc, dir: folder, file, stats, restart: () => runBalancer(t, body, extraStats, folder) };
}

/** The frontend port of `name` in the written configuration. */
export function frontendPort(yaml: string, name: string): number {
  const m = new RegExp(`name: ${name}, listen: "?127\\.0\\.0\\.1:(\\d+)`).exec(yaml);
  if (!m) throw new Error(`frontend ${name} not found`);
  return Number(m[1]);
}
