import { join } from 'node:path';
import { startChild, waitForPort } from '../child.ts';
import { REPO, tsArgs } from '../node-script.ts';
import { freePort } from '../ports.ts';
import type { NaiveSpec, RunningTarget, StartContext } from './target.ts';
import { childTarget } from './running.ts';

/** bench/naive-proxy.ts: the textbook pipe proxy, the floor licproxy is compared against (or `spec.script`). */
export async function startNaive(spec: NaiveSpec, ctx: StartContext): Promise<RunningTarget> {
  const port = await freePort();
  const child = startChild({
    name: spec.name,
    command: process.execPath,
    args: [...(ctx.nodeArgs ?? []), ...tsArgs(spec.script ?? 'bench/naive-proxy.ts', [String(port), ...ctx.upstreams.map((u) => `${u.host}:${u.port}`)])],
    cwd: REPO,
    logFile: join(ctx.dir, `${spec.name}.log`),
  });
  await waitForPort('127.0.0.1', port, child);
  return childTarget(spec.name, port, child);
}
