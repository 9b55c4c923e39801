/** NGINX stream proxy (Debian package + libnginx-mod-stream), `worker_processes 1`, `daemon off`. */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startChild, waitForPort } from '../child.ts';
import { freePort } from '../ports.ts';
import type { NginxSpec, RunningTarget, StartContext } from './target.ts';
import { childTarget } from './running.ts';

/** Where Debian's libnginx-mod-stream puts the dynamic module. */
export const NGINX_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

export function nginxConfig(spec: NginxSpec, port: number, ctx: StartContext): string {
  // NGINX counts the upstream side as a connection too: two per proxied client.
  const workerConnections = Math.min(19_800, Math.max(1_024, 2 * ctx.maxConnections + 200));
  const servers = ctx.upstreams.map((u) => `    server ${u.host}:${u.port};`);
  return [
    ...(existsSync(NGINX_STREAM_MODULE) ? [`load_module ${NGINX_STREAM_MODULE};`] : []),
    `worker_processes ${spec.workers ?? 1};`,
    'daemon off;',
    `pid ${join(ctx.dir, `${spec.name}.pid`)};`,
    `error_log ${join(ctx.dir, `${spec.name}.error.log`)} error;`,
    'worker_rlimit_nofile 19900;',
    `events { worker_connections ${workerConnections}; }`,
    'stream {',
    '  upstream pool {',
    ...servers,
    '  }',
    '  server {',
    `    listen 127.0.0.1:${port} backlog=4096;`,
    '    proxy_pass pool;',
    '    proxy_connect_timeout 3s;',
    '    proxy_timeout 30m;',
    '  }',
    '}',
    '',
  ].join('\n');
}

export async function startNginx(spec: NginxSpec, binary: string, ctx: StartContext): Promise<RunningTarget> {
  const port = await freePort();
  const file = join(ctx.dir, `${spec.name}.conf`);
  writeFileSync(file, nginxConfig(spec, port, ctx));
  // -e: the error log before the config is read (else the default /var/log/nginx/error.log is opened first).
  const child = startChild({
    name: spec.name,
    command: binary,
    args: ['-p', ctx.dir, '-c', file, '-e', join(ctx.dir, `${spec.name}.error.log`)],
    logFile: join(ctx.dir, `${spec.name}.log`),
  });
  await waitForPort('127.0.0.1', port, child);
  return childTarget(spec.name, port, child);
}
