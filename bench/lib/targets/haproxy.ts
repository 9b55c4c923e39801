/** HAProxy (Debian package) in `mode tcp`, `balance roundrobin`, run in the foreground with `-db`. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startChild, waitForPort } from '../child.ts';
import { freePort } from '../ports.ts';
import type { HaproxySpec, RunningTarget, StartContext } from './target.ts';
import { childTarget } from './running.ts';

/** The `defaults` section every generated HAProxy config starts from: TCP mode, license-length timeouts. */
export const HAPROXY_TCP_DEFAULTS: readonly string[] = ['defaults', '  mode tcp', '  timeout connect 3s', '  timeout client 30m', '  timeout server 30m'];

export function haproxyConfig(spec: HaproxySpec, port: number, ctx: StartContext): string {
  // Two fds per proxied connection: with a 20,000 fd limit, maxconn must stay near 9,900 or HAProxy refuses.
  const maxconn = Math.min(9_900, Math.max(4_096, ctx.maxConnections + 200));
  const servers = ctx.upstreams.map((u, i) => `  server s${i} ${u.host}:${u.port}${spec.check ? ' check inter 1s' : ''}`);
  return [
    'global',
    `  maxconn ${maxconn}`,
    ...(spec.nbthread === undefined ? [] : [`  nbthread ${spec.nbthread}`]),
    '',
    ...HAPROXY_TCP_DEFAULTS,
    '',
    'frontend bench',
    `  bind 127.0.0.1:${port}`,
    `  maxconn ${maxconn}`,
    '  default_backend pool',
    '',
    'backend pool',
    '  balance roundrobin',
    ...servers,
    '',
  ].join('\n');
}

export async function startHaproxy(spec: HaproxySpec, binary: string, ctx: StartContext): Promise<RunningTarget> {
  const port = await freePort();
  const file = join(ctx.dir, `${spec.name}.cfg`);
  writeFileSync(file, haproxyConfig(spec, port, ctx));
  const child = startChild({ name: spec.name, command: binary, args: ['-f', file, '-db'], logFile: join(ctx.dir, `${spec.name}.log`) });
  await waitForPort('127.0.0.1', port, child);
  return childTarget(spec.name, port, child);
}
