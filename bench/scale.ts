/**
 * Scale figures: one licproxy with a pool of 1,000 servers and 100 frontends.
 *
 *   node --import tsx bench/scale.ts [--servers 1000] [--frontends 100] [--check tcp|none] [--listeners 4] [--reloads 5]
 *
 * Measures, for `node bin/licproxy.js run` (log_level info, stdout read by this script):
 * - start-up: spawn -> "licproxy running", and -> every server UP (tcp checks) as /stats.json reports it;
 * - memory: VmRSS once every server is UP and after the reloads (a growing figure would be a leak);
 * - reload: SIGHUP -> "configuration reloaded" (pino's own timestamp), for an unchanged file and for a file with one
 *   weight changed and one frontend added;
 * - the CPU the checks cost at rest (1,000 tcp checks a second against a few real listeners of this process).
 * The servers share `--listeners` real TCP listeners of this process (accept, then close), so every check is a real
 * connect. Bounded: every wait has a deadline, and the child is killed at the end.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { freePort } from './lib/ports.ts';
import { REPO } from './lib/node-script.ts';
import { treeCpuSeconds, treeRssKb } from './lib/proc.ts';

const { values } = parseArgs({
  options: {
    servers: { type: 'string', default: '1000' },
    frontends: { type: 'string', default: '100' },
    check: { type: 'string', default: 'tcp' },
    listeners: { type: 'string', default: '4' },
    reloads: { type: 'string', default: '5' },
  },
});
const SERVERS = Math.min(5_000, Math.max(1, Number(values.servers)));
const FRONTENDS = Math.min(500, Math.max(1, Number(values.frontends)));
const CHECK = values.check === 'none' ? 'none' : 'tcp';
const LISTENERS = Math.min(64, Math.max(1, Number(values.listeners)));
const RELOADS = Math.min(20, Math.max(1, Number(values.reloads)));
const DEADLINE_MS = 120_000;

const log = (s: string): void => void process.stderr.write(`${s}\n`);

async function startListeners(n: number): Promise<Server[]> {
  const out: Server[] = [];
  for (let i = 0; i < n; i++) {
    const s = createServer((c) => {
      c.on('error', () => {});
      c.destroy();
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    out.push(s);
  }
  return out;
}

/** `fePorts`: a listen port per frontend, the same at every reload (a frontend may not listen on port 0). */
function config(ports: number[], statsPort: number, fePorts: number[], extra: { weightOf0?: number; extraFrontend?: boolean } = {}): string {
  const servers = Array.from({ length: SERVERS }, (_, i) => ({
    name: `s${i}`,
    address: `127.0.0.1:${ports[i % ports.length]}`,
    ...(i === 0 && extra.weightOf0 !== undefined ? { weight: extra.weightOf0 } : {}),
  }));
  const frontends = Array.from({ length: FRONTENDS + (extra.extraFrontend ? 1 : 0) }, (_, i) => ({
    name: `f${i}`,
    listen: `127.0.0.1:${fePorts[i]}`,
    pool: 'big',
  }));
  return stringify({
    global: { log_level: 'info', max_connections: 50_000, grace: '1s' },
    stats: { listen: `127.0.0.1:${statsPort}` },
    pools: { big: { check: { type: CHECK, interval: '1s', timeout: '500ms' }, servers } },
    frontends,
  });
}

function getJson(port: number, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body));
        } catch (err) {
          reject(err);
        }
      });
    });
    req.once('error', reject);
    req.once('timeout', () => req.destroy(new Error(`GET ${path}: timeout`)));
  });
}

async function until<T>(what: string, f: () => T | null | undefined | false | Promise<T | null | undefined | false>, deadline: number): Promise<T> {
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within the deadline`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface LogLine {
  time: number;
  msg: string;
}

async function main(): Promise<void> {
  const started = Date.now();
  const deadline = started + DEADLINE_MS;
  const dir = mkdtempSync(join(tmpdir(), 'licproxy-scale-'));
  const listeners = await startListeners(LISTENERS);
  const ports = listeners.map((l) => (l.address() as { port: number }).port);
  const statsPort = await freePort();
  const fePorts: number[] = [];
  for (let i = 0; i <= FRONTENDS; i++) fePorts.push(await freePort());
  const file = join(dir, 'scale.yaml');
  writeFileSync(file, config(ports, statsPort, fePorts));
  const lines: LogLine[] = [];
  const t0 = Date.now();
  const child = spawn(process.execPath, [join(REPO, 'bin/licproxy.js'), 'run', '-c', file], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let rest = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    rest += s;
    let i: number;
    while ((i = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, i);
      rest = rest.slice(i + 1);
      try {
        const j = JSON.parse(line) as LogLine;
        if (j.msg === 'licproxy running' || j.msg === 'configuration reloaded' || j.msg.startsWith('reload failed')) lines.push(j);
      } catch {
        /* not a JSON line */
      }
    }
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const stop = (): void => {
    child.kill('SIGKILL');
    for (const l of listeners) l.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const running = await until('licproxy running', () => {
      if (child.exitCode !== null) throw new Error(`licproxy exited: ${stderr.slice(-2000)}`);
      return lines.find((l) => l.msg === 'licproxy running');
    }, deadline);
    const startMs = running.time - t0;
    log(`started: "licproxy running" ${startMs} ms after spawn`);
    type Snap = { pools: { servers: { status: string }[] }[]; frontends: { status: string }[] };
    let upMs: number | null = null;
    if (CHECK === 'tcp') {
      await until('every server UP', async () => {
        const s = (await getJson(statsPort, '/stats.json').catch(() => null)) as Snap | null;
        return s !== null && s.pools[0]!.servers.filter((x) => x.status === 'UP').length === SERVERS;
      }, deadline);
      upMs = Date.now() - t0;
      log(`every one of ${SERVERS} servers UP ${upMs} ms after spawn`);
    }
    await new Promise((r) => setTimeout(r, 3_000));
    const rssUp = treeRssKb(child.pid!);
    const cpu0 = treeCpuSeconds(child.pid!);
    await new Promise((r) => setTimeout(r, 5_000));
    const restCpu = (treeCpuSeconds(child.pid!) - cpu0) / 5;

    const reloads: { kind: string; ms: number }[] = [];
    let current: { weightOf0?: number; extraFrontend?: boolean } = {};
    for (let i = 0; i < RELOADS; i++) {
      for (const kind of ['unchanged', 'changed'] as const) {
        if (kind === 'changed') current = { weightOf0: 2 + (i % 50), extraFrontend: !current.extraFrontend };
        writeFileSync(file, config(ports, statsPort, fePorts, current));
        const before = lines.length;
        const sent = Date.now();
        child.kill('SIGHUP');
        const done = await until(`reload ${i + 1} (${kind})`, () => lines.slice(before).find((l) => l.msg !== 'licproxy running'), deadline);
        if (done.msg !== 'configuration reloaded') throw new Error(`reload failed: ${done.msg}`);
        reloads.push({ kind, ms: done.time - sent });
        await new Promise((r) => setTimeout(r, 300));
      }
    }
    await new Promise((r) => setTimeout(r, 2_000));
    const rssAfter = treeRssKb(child.pid!);
    const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const unchanged = reloads.filter((r) => r.kind === 'unchanged').map((r) => r.ms);
    const changed = reloads.filter((r) => r.kind === 'changed').map((r) => r.ms);
    const out = [
      `## Scale: ${SERVERS} servers in one pool, ${FRONTENDS} frontends (check ${CHECK})`,
      '',
      `command: \`node --import tsx bench/scale.ts --servers ${SERVERS} --frontends ${FRONTENDS} --check ${CHECK} --listeners ${LISTENERS} --reloads ${RELOADS}\``,
      '',
      '| figure | value |',
      '|---|---:|',
      `| start-up: spawn -> "licproxy running" (every listener open) | ${startMs} ms |`,
      ...(upMs !== null ? [`| start-up: spawn -> all ${SERVERS} servers UP (first checks, rise 2) | ${upMs} ms |`] : []),
      `| RSS with everything UP | ${(rssUp / 1024).toFixed(1)} MiB |`,
      `| proxy CPU at rest (${CHECK === 'tcp' ? `${SERVERS} tcp checks/s` : 'no checks'}) | ${(restCpu * 100).toFixed(1)} % of one core |`,
      `| reload, unchanged file: SIGHUP -> "configuration reloaded" | median ${med(unchanged)} ms (${Math.min(...unchanged)}-${Math.max(...unchanged)}) |`,
      `| reload, one weight changed + one frontend added/removed | median ${med(changed)} ms (${Math.min(...changed)}-${Math.max(...changed)}) |`,
      `| RSS after ${reloads.length} reloads | ${(rssAfter / 1024).toFixed(1)} MiB |`,
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    stop();
  }
}

await main();
