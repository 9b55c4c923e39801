/** licproxy itself: `node bin/licproxy.js run -c <generated yaml>`, one pool over the bench's backends. */
import { get } from 'node:http';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startChild, waitForPort } from '../child.ts';
import { REPO } from '../node-script.ts';
import { freePort } from '../ports.ts';
import type { LicproxySpec, RunningTarget, StartContext } from './target.ts';
import { childTarget } from './running.ts';

export const LICPROXY_BIN = join(REPO, 'bin/licproxy.js');

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Variant keys win over the bench's defaults, nested mappings merged key by key. */
function merge(base: Obj, extra: Obj | undefined): Obj {
  if (!extra) return base;
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(extra)) out[k] = isObj(v) && isObj(out[k]) ? merge(out[k] as Obj, v) : v;
  return out;
}

export function licproxyConfig(spec: LicproxySpec, port: number, statsPort: number | null, ctx: StartContext): string {
  const doc: Obj = {
    // warn: a per-connection log line would make the bench measure pino, not the proxy.
    global: merge({ log_level: 'warn', max_connections: 50_000, grace: '1s' }, spec.global),
    ...(statsPort === null ? {} : { stats: { listen: `127.0.0.1:${statsPort}` } }),
    pools: {
      bench: merge(
        {
          timeouts: { connect: '3s', idle: '30m', queue: '10s' },
          check: { type: spec.check ?? 'none' },
          servers: ctx.upstreams.map((u, i) => ({ name: `s${i}`, address: `${u.host}:${u.port}` })),
        },
        spec.pool,
      ),
    },
    frontends: [{ name: 'bench', listen: `127.0.0.1:${port}`, pool: 'bench' }],
  };
  return stringify(doc);
}

export async function startLicproxy(spec: LicproxySpec, ctx: StartContext): Promise<RunningTarget> {
  const port = await freePort();
  const statsPort = spec.hammerStats ? await freePort() : null;
  const file = join(ctx.dir, `${spec.name}.yaml`);
  writeFileSync(file, licproxyConfig(spec, port, statsPort, ctx));
  const repo = spec.repo?.() ?? REPO;
  if (!existsSync(join(repo, 'bin/licproxy.js'))) throw new Error(`${spec.name}: no bin/licproxy.js under ${repo}`);
  const child = startChild({
    name: spec.name,
    command: process.execPath,
    args: [...(ctx.nodeArgs ?? []), ...(spec.nodeArgs ?? []), join(repo, 'bin/licproxy.js'), 'run', '-c', file],
    cwd: repo,
    logFile: join(ctx.dir, `${spec.name}.log`),
  });
  await waitForPort('127.0.0.1', port, child);
  const hammer = statsPort !== null && spec.hammerStats ? hammerStats(statsPort, spec.hammerStats, spec.hammerPath ?? '/stats.json') : null;
  return childTarget(spec.name, port, child, () => hammer?.stop());
}

/**
 * Polls a stats path at `perSecond` while the target runs, one request in flight at most, so a variant can show
 * what a busy dashboard or scraper costs the forwarder.
 */
function hammerStats(port: number, perSecond: number, path: string): { stop(): void } {
  let inFlight = false;
  const timer = setInterval(() => {
    if (inFlight) return;
    inFlight = true;
    const req = get({ host: '127.0.0.1', port, path, timeout: 2_000 }, (res) => {
      res.resume();
      res.once('end', () => (inFlight = false));
    });
    req.once('error', () => (inFlight = false));
    req.once('timeout', () => req.destroy());
  }, Math.max(1, Math.round(1_000 / perSecond)));
  return { stop: () => clearInterval(timer) };
}
