/**
 * The targets table. A variant is one line: e.g.
 *   { kind: 'licproxy', name: 'licproxy-aff', description: 'licproxy, affinity by source', pool: { affinity: { by: 'source' } } },
 *   { kind: 'licproxy', name: 'licproxy-stats', description: 'licproxy, /stats.json polled 20/s', hammerStats: 20 },
 * Entries with `extra: true` run only when named in --targets.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ensureTool, toolVersion } from '../install.ts';
import { startDirect } from './direct.ts';
import { startHaproxy } from './haproxy.ts';
import { startLicproxy } from './licproxy.ts';
import { NGINX_STREAM_MODULE, startNginx } from './nginx.ts';
import { startNaive } from './naive.ts';
import type { RunningTarget, StartContext, TargetSpec } from './target.ts';

export type TableEntry = TargetSpec & { extra?: boolean };

export const TARGETS: readonly TableEntry[] = [
  { kind: 'direct', name: 'direct', description: 'load generator straight to the backend (the limit)' },
  // As deployed: tcp checks, counters, one JSON log line per connection (info) to a file.
  { kind: 'licproxy', name: 'licproxy', description: 'licproxy as deployed: tcp checks every 1s, log_level info (a line per connection, to a file)', check: 'tcp', global: { log_level: 'info' } },
  { kind: 'haproxy', name: 'haproxy-1t', description: 'HAProxy mode tcp, roundrobin, nbthread 1', nbthread: 1 },
  { kind: 'haproxy', name: 'haproxy', description: 'HAProxy mode tcp, roundrobin, default threads (one per core)' },
  { kind: 'nginx', name: 'nginx', description: 'NGINX stream, worker_processes 1' },
  { kind: 'naive', name: 'naive', description: 'bench/naive-proxy.ts: net.createServer + pipe both ways (the floor)' },
  { kind: 'licproxy', name: 'licproxy-affinity', description: 'licproxy as deployed, with affinity by source', check: 'tcp', global: { log_level: 'info' }, pool: { affinity: { by: 'source' } }, extra: true },
  // A/B of a change: LICPROXY_REF=<another copy of the repo> runs the deployed configuration from that tree.
  { kind: 'licproxy', name: 'licproxy-ref', description: 'licproxy as deployed, run from $LICPROXY_REF (the tree before a change)', check: 'tcp', global: { log_level: 'info' }, repo: () => process.env.LICPROXY_REF, extra: true },
  { kind: 'licproxy', name: 'licproxy-nolog', description: 'licproxy with tcp checks, log_level warn (no per-connection log line)', check: 'tcp', extra: true },
  { kind: 'licproxy', name: 'licproxy-nocheck', description: 'licproxy with check none, log_level info', global: { log_level: 'info' }, extra: true },
  { kind: 'licproxy', name: 'licproxy-lean', description: 'licproxy, check none, log_level warn (no per-connection log line)', extra: true },
  { kind: 'licproxy', name: 'licproxy-stats', description: 'licproxy with /stats.json polled 20 times a second', hammerStats: 20, extra: true },
  { kind: 'licproxy', name: 'licproxy-metrics', description: 'licproxy with /metrics scraped back to back (one request in flight, no pause)', check: 'tcp', global: { log_level: 'info' }, hammerStats: 1000, hammerPath: '/metrics', extra: true },
  { kind: 'licproxy', name: 'licproxy-2w', description: 'licproxy as deployed, with global.workers: 2 (a primary and two forwarding processes)', check: 'tcp', global: { log_level: 'info', workers: 2 }, extra: true },
  { kind: 'licproxy', name: 'licproxy-2w-shared', description: 'licproxy as deployed, with global.workers: 2 and worker_accept: shared (each worker accepts itself)', check: 'tcp', global: { log_level: 'info', workers: 2, worker_accept: 'shared' }, extra: true },
  { kind: 'licproxy', name: 'licproxy-feature', description: 'licproxy, route: feature (licd protocol, lmstat checks), log_level warn', pool: { route: 'feature', check: { type: 'lmstat' } }, extra: true },
  { kind: 'licproxy', name: 'licproxy-licd', description: 'licproxy, protocol: licd (watches to the first CHECKOUT answer), log_level warn', pool: { protocol: 'licd', check: { type: 'lmstat' } }, extra: true },
  { kind: 'haproxy', name: 'haproxy-check', description: 'HAProxy with tcp checks every 1s', check: true, extra: true },
];

export interface ResolvedTarget {
  spec: TargetSpec;
  start(ctx: StartContext): Promise<RunningTarget>;
}

/**
 * Binds each selected entry to its starter, installing or skipping HAProxy/NGINX as needed. `versions` collects
 * the tool versions for the report header.
 */
export function resolveTargets(
  entries: readonly TargetSpec[],
  log: (line: string) => void,
  versions: Map<string, string>,
): { targets: ResolvedTarget[]; skipped: { name: string; reason: string }[] } {
  const targets: ResolvedTarget[] = [];
  const skipped: { name: string; reason: string }[] = [];
  for (const spec of entries) {
    switch (spec.kind) {
      case 'direct':
        targets.push({ spec, start: async (ctx) => startDirect(spec, ctx) });
        break;
      case 'licproxy':
        targets.push({ spec, start: (ctx) => startLicproxy(spec, ctx) });
        break;
      case 'naive':
        targets.push({ spec, start: (ctx) => startNaive(spec, ctx) });
        break;
      case 'haproxy': {
        const tool = ensureTool('haproxy', ['haproxy'], log);
        if ('skip' in tool) {
          skipped.push({ name: spec.name, reason: tool.skip });
          break;
        }
        versions.set('haproxy', toolVersion(tool.path, ['-v']));
        targets.push({ spec, start: (ctx) => startHaproxy(spec, tool.path, ctx) });
        break;
      }
      case 'nginx': {
        const tool = ensureTool('nginx', ['nginx', 'libnginx-mod-stream'], log, () => existsSync(NGINX_STREAM_MODULE) || nginxHasStream());
        if ('skip' in tool) {
          skipped.push({ name: spec.name, reason: tool.skip });
          break;
        }
        versions.set('nginx', toolVersion(tool.path, ['-v']));
        targets.push({ spec, start: (ctx) => startNginx(spec, tool.path, ctx) });
        break;
      }
    }
  }
  return { targets, skipped };
}

/** A self-built NGINX may have the stream module compiled in rather than as a Debian dynamic module. */
function nginxHasStream(): boolean {
  const nginx = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx'].find((p) => existsSync(p));
  if (!nginx) return false;
  const r = spawnSync(nginx, ['-V'], { encoding: 'utf8', timeout: 10_000 });
  return / --with-stream(?!=dynamic)/.test(`${r.stdout ?? ''}${r.stderr ?? ''}`);
}
