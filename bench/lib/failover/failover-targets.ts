/**
 * The balancers compared by `bench/failover.ts`, each in front of a primary and a secondary license server,
 * started as child processes from a generated configuration:
 *
 * - `licproxy`: SPEC 2 defaults (check interval 1s, fast 250ms, timeout 500ms, rise 2, fall 3, retries 3,
 *   redispatch), `mode: failover`, secondary on tier 1, `check.type: lmstat` (the license-aware check; the plain
 *   default `tcp` cannot see a hung server at all, as HAProxy's cannot);
 * - `licproxy-observe`: the same with `check.observe: response`;
 * - `haproxy-seeds`: HAProxy as the seeds' examples write it: `mode tcp`, `balance roundrobin`,
 *   `check inter 30s fastinter 5s downinter 30s` (rise 2, fall 3 by default), `retries 3`, `option redispatch`,
 *   the secondary as `backup`;
 * - `haproxy-defaults`: HAProxy with its defaults: `check` (inter 2s, rise 2, fall 3), retries 3, no redispatch.
 *
 * Each reports when it marked the primary DOWN: licproxy from its own event log (/api/events), HAProxy from its
 * stats socket (`show stat`), polled every 50ms.
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startChild, waitForPort, type ChildHandle } from '../child.ts';
import { REPO } from '../node-script.ts';
import { freePort } from '../ports.ts';
import type { LicensePair } from './license-pair.ts';
import { HAPROXY_TCP_DEFAULTS } from '../targets/haproxy.ts';

export type FailoverTargetName = 'licproxy' | 'licproxy-observe' | 'haproxy-seeds' | 'haproxy-defaults';

export interface FailoverTargetSpec {
  name: FailoverTargetName;
  description: string;
}

export const FAILOVER_TARGETS: readonly FailoverTargetSpec[] = [
  { name: 'licproxy', description: 'licproxy, SPEC 2 defaults, `check.type: lmstat`, `mode: failover`, secondary `tier: 1`' },
  { name: 'licproxy-observe', description: 'the same with `check.observe: response`' },
  {
    name: 'haproxy-seeds',
    description: 'HAProxy as in the seeds: `check inter 30s fastinter 5s downinter 30s` (rise 2 fall 3), `retries 3`, `option redispatch`, secondary `backup`',
  },
  { name: 'haproxy-defaults', description: 'HAProxy defaults: `check` (inter 2s, rise 2, fall 3), retries 3, no redispatch, secondary `backup`' },
];

export interface RunningFailoverTarget {
  readonly name: FailoverTargetName;
  readonly port: number;
  /** Starts watching for the primary's DOWN (HAProxy: poll its stats socket). */
  watch(): void;
  /** Date.now() when the balancer marked the primary DOWN at or after `since`; null if it did not. */
  downAt(since: number): Promise<number | null>;
  failure(): string | null;
  stop(): Promise<void>;
}

export interface FailoverStartContext {
  dir: string;
  pair: LicensePair;
  haproxyBinary: string | null;
}

export async function startFailoverTarget(spec: FailoverTargetSpec, ctx: FailoverStartContext): Promise<RunningFailoverTarget> {
  return spec.name.startsWith('licproxy') ? startLicproxy(spec, ctx) : startHaproxy(spec, ctx);
}

// ---- licproxy ----

async function startLicproxy(spec: FailoverTargetSpec, ctx: FailoverStartContext): Promise<RunningFailoverTarget> {
  const port = await freePort();
  const statsPort = await freePort();
  const file = join(ctx.dir, `${spec.name}.yaml`);
  const { primary, secondary } = ctx.pair;
  writeFileSync(
    file,
    stringify({
      global: { log_level: 'warn', grace: '1s' },
      stats: { listen: `127.0.0.1:${statsPort}` },
      pools: {
        lic: {
          mode: 'failover',
          check: { type: 'lmstat', ...(spec.name === 'licproxy-observe' ? { observe: 'response' } : {}) },
          servers: [
            { name: 'primary', address: `127.0.0.1:${primary.port}` },
            { name: 'secondary', address: `127.0.0.1:${secondary.port}`, tier: 1 },
          ],
        },
      },
      frontends: [{ name: 'lic', listen: `127.0.0.1:${port}`, pool: 'lic' }],
    }),
  );
  const child = startChild({
    name: spec.name,
    command: process.execPath,
    args: [join(REPO, 'bin/licproxy.js'), 'run', '-c', file],
    cwd: REPO,
    logFile: join(ctx.dir, `${spec.name}.log`),
  });
  await waitForPort('127.0.0.1', port, child);
  return {
    name: spec.name,
    port,
    watch() {},
    async downAt(since) {
      const body = await httpGet(statsPort, '/api/events');
      const { events } = JSON.parse(body) as { events: Array<{ at: number; type: string; pool?: string; server?: string }> };
      return events.find((e) => e.type === 'down' && e.server === 'primary' && e.at >= since)?.at ?? null;
    },
    failure: () => childFailure(child),
    stop: () => child.stop(),
  };
}

function httpGet(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

// ---- HAProxy ----

export function haproxyFailoverConfig(name: FailoverTargetName, port: number, socket: string, pair: LicensePair): string {
  const seeds = name === 'haproxy-seeds';
  const check = seeds ? 'check inter 30s fastinter 5s downinter 30s' : 'check';
  return [
    'global',
    '  maxconn 4096',
    `  stats socket ${socket} mode 600 level admin`,
    '',
    ...HAPROXY_TCP_DEFAULTS,
    ...(seeds ? ['  retries 3', '  option redispatch'] : []),
    '',
    'frontend lic',
    `  bind 127.0.0.1:${port}`,
    '  default_backend pool',
    '',
    'backend pool',
    '  balance roundrobin',
    `  server primary 127.0.0.1:${pair.primary.port} ${check}`,
    `  server secondary 127.0.0.1:${pair.secondary.port} ${check} backup`,
    '',
  ].join('\n');
}

async function startHaproxy(spec: FailoverTargetSpec, ctx: FailoverStartContext): Promise<RunningFailoverTarget> {
  if (!ctx.haproxyBinary) throw new Error('haproxy is not available');
  const port = await freePort();
  const socket = join(ctx.dir, `${spec.name}.sock`);
  const file = join(ctx.dir, `${spec.name}.cfg`);
  writeFileSync(file, haproxyFailoverConfig(spec.name, port, socket, ctx.pair));
  const child = startChild({ name: spec.name, command: ctx.haproxyBinary, args: ['-f', file, '-db'], logFile: join(ctx.dir, `${spec.name}.log`) });
  await waitForPort('127.0.0.1', port, child);
  let timer: NodeJS.Timeout | undefined;
  let polling = false;
  const downs: number[] = [];
  return {
    name: spec.name,
    port,
    watch() {
      timer ??= setInterval(() => {
        if (polling) return;
        polling = true;
        haproxyStatus(socket, 'pool', 'primary')
          .then((status) => {
            if (status?.startsWith('DOWN')) downs.push(Date.now());
          })
          .catch(() => {})
          .finally(() => (polling = false));
      }, 50);
    },
    async downAt(since) {
      return downs.find((t) => t >= since) ?? null;
    },
    failure: () => childFailure(child),
    async stop() {
      if (timer) clearInterval(timer);
      await child.stop();
    },
  };
}

/** The `status` column of one server from `show stat` on the stats socket (null when it is not listed). */
export function haproxyStatus(socket: string, backend: string, server: string): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    let text = '';
    s.setEncoding('utf8');
    s.setTimeout(2_000, () => s.destroy(new Error('stats socket timed out')));
    s.on('connect', () => s.write('show stat\n'));
    s.on('data', (c: string) => (text += c));
    s.on('error', reject);
    s.on('close', () => {
      const lines = text.split('\n');
      const head = (lines[0] ?? '').replace(/^# /, '').split(',');
      const col = head.indexOf('status');
      const row = lines.map((l) => l.split(',')).find((r) => r[0] === backend && r[1] === server);
      resolve(row && col >= 0 ? (row[col] ?? null) : null);
    });
  });
}

function childFailure(child: ChildHandle): string | null {
  const e = child.exited;
  return e ? `${child.name} exited (${e.code ?? e.signal}):\n${child.logTail()}` : null;
}
