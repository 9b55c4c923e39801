/**
 * A primary's death with `global.workers: 2` (issue 15): what a SIGKILL of the primary cuts, and how long the port
 * is closed, with the port bound by licproxy and with the listening socket passed as systemd's socket activation
 * passes it (LISTEN_FDS; this process holds the socket as systemd would).
 *
 *   node --import tsx bench/primary-death.ts [--connections 200] [--runs 3]
 *
 * Per run and variant: a real licd (in this process), `licproxy run` (the sources through tsx, as the tests run it)
 * with 2 workers, N license connections each holding a seat (CHECKOUT granted). Then the primary gets SIGKILL and,
 * as soon as it is gone, a replacement is started from the same file (what systemd's Restart= does, less its
 * RestartSec). Meanwhile a prober connects every 10 ms and sends HEARTBEAT. Figures:
 * - held connections kept: those whose HEARTBEAT is still answered after the kill (through the orphaned workers);
 * - seats lost: licd's seats in use before the kill minus after (1 s after the replacement serves);
 * - port closed: from the kill to the prober's first completed TCP connect (refused connects counted);
 * - first new client served: from the kill to the first HEARTBEAT answered through the replacement.
 * Bounded: at most 5 runs, every wait has a deadline, every process is killed at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { holdSocket, type HeldSocket } from '../test/helpers/held-socket.ts';
import { LICPROXY, REPO } from '../test/helpers/cli.ts';
import { LineClient, startLicd, type InProcessLicd } from '../test/helpers/licd.ts';
import { freePort } from './lib/ports.ts';
import { treePids } from './lib/proc.ts';

const { values } = parseArgs({ options: { connections: { type: 'string', default: '200' }, runs: { type: 'string', default: '3' } } });
const HELD = Math.min(2_000, Math.max(1, Number(values.connections)));
const RUNS = Math.min(5, Math.max(1, Number(values.runs)));
const DEADLINE_MS = 60_000;

interface Licproxy {
  child: ChildProcess;
  exited: Promise<void>;
  running: Promise<void>;
  /** What it (and its workers, on the same pipe) logged so far. */
  out: () => string;
}

function spawnLicproxy(file: string, fds: number[]): Licproxy {
  const child =
    fds.length === 0
      ? spawn(process.execPath, [LICPROXY, 'run', '-c', file], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] })
      : spawn('/bin/sh', ['-c', `LISTEN_PID=$$ LISTEN_FDS=${fds.length} exec "$0" "$@"`, process.execPath, LICPROXY, 'run', '-c', file], {
          cwd: REPO,
          stdio: ['ignore', 'pipe', 'inherit', ...fds],
        });
  let out = '';
  const running = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('licproxy did not start within 60 s')), DEADLINE_MS);
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (out.includes('"licproxy running"')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, exited, running, out: () => out };
}

function seatsInUse(licd: InProcessLicd): number {
  return licd.server.status().features.find((f) => f.name === 'LS-DYNA')?.inUse ?? -1;
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

/**
 * Connects every 10 ms until a HEARTBEAT is answered: how long connects were refused (first refusal to the next
 * completed connect; 0 without refusals), how many, and when (after t0) the first was served.
 */
async function probe(port: number, t0: number): Promise<{ closedMs: number; servedMs: number; refused: number }> {
  let refused = 0;
  let firstRefusedAt = -1;
  let closedMs = 0;
  while (performance.now() - t0 < DEADLINE_MS) {
    const c = await LineClient.connect(port).catch(() => null);
    if (c === null) {
      if (refused++ === 0) firstRefusedAt = performance.now();
      await new Promise((r) => setTimeout(r, 10));
      continue;
    }
    if (firstRefusedAt >= 0 && closedMs === 0) closedMs = performance.now() - firstRefusedAt;
    const answer = await withDeadline(c.request('HEARTBEAT', DEADLINE_MS), DEADLINE_MS, 'probe').catch(() => 'lost');
    c.destroy();
    if (answer === 'OK') return { closedMs, servedMs: performance.now() - t0, refused };
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('no new client served within 60 s');
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + DEADLINE_MS;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`${what}: not within 60 s`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

interface Result {
  kept: number;
  seatsLost: number;
  /** Kill -> both workers logged the lost primary (they stopped accepting). */
  orphanedMs: number;
  closedMs: number;
  refused: number;
  servedMs: number;
}

async function run(licd: InProcessLicd, activated: boolean, kill: Set<number>): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'licproxy-primary-death-'));
  let held: HeldSocket | null = null;
  const clients: LineClient[] = [];
  const procs: Licproxy[] = [];
  try {
    held = activated ? holdSocket() : null;
    const port = held?.port ?? (await freePort());
    const file = join(dir, 'licproxy.yaml');
    writeFileSync(
      file,
      [
        'global: { workers: 2, grace: 2s }',
        'pools:',
        '  lic:',
        '    balance: leastconn',
        '    ports: { license: 1 }',
        '    check: { type: tcp, interval: 200ms, rise: 1 }',
        '    servers:',
        `      - { name: alpha, host: 127.0.0.1, ports: { license: ${licd.ports.license} } }`,
        'frontends:',
        `  - { name: license, listen: 127.0.0.1:${port}, pool: lic, port: license }`,
        '',
      ].join('\n'),
    );
    const fds = held ? [held.fd] : [];
    const first = spawnLicproxy(file, fds);
    procs.push(first);
    await first.running;
    for (let i = 0; i < HELD; i++) {
      const c = await retryConnect(port);
      clients.push(c);
      const g = await withDeadline(c.request('CHECKOUT LS-DYNA'), DEADLINE_MS, 'checkout');
      if (!g.startsWith('GRANTED')) throw new Error(`checkout ${i}: ${g}`);
    }
    const before = seatsInUse(licd);
    for (const pid of treePids(first.child.pid!)) kill.add(pid);

    const t0 = performance.now();
    first.child.kill('SIGKILL');
    await first.exited;
    const second = spawnLicproxy(file, fds);
    // Until the workers see their channel close they still accept (with socket activation, on the socket itself):
    // the prober starts once both have stopped, so that what it measures is the gap to the replacement.
    await until(() => first.out().split('the primary is gone').length - 1 >= 2, 'both workers log the lost primary');
    const orphanedMs = performance.now() - t0;
    const prober = probe(port, t0);
    procs.push(second);
    const answers = await Promise.all(clients.map((c) => withDeadline(c.request('HEARTBEAT'), 10_000, 'heartbeat').catch(() => 'lost')));
    const kept = answers.filter((a) => a === 'OK').length;
    await second.running;
    const p = await prober;
    for (const pid of treePids(second.child.pid!)) kill.add(pid);
    await new Promise((r) => setTimeout(r, 1_000));
    const after = seatsInUse(licd);
    return { kept, seatsLost: before - after, orphanedMs, closedMs: p.closedMs, refused: p.refused, servedMs: p.servedMs };
  } finally {
    for (const c of clients) c.destroy();
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => withDeadline(p.exited, 10_000, 'exit').catch(() => p.child.kill('SIGKILL'))));
    held?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function retryConnect(port: number): Promise<LineClient> {
  for (let i = 0; ; i++) {
    try {
      return await LineClient.connect(port);
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const licd = await startLicd({ name: 'alpha', features: [{ name: 'LS-DYNA', count: 100_000 }] });
  const kill = new Set<number>();
  const rows: string[] = [];
  try {
    for (const activated of [false, true]) {
      const results: Result[] = [];
      for (let r = 0; r < RUNS; r++) {
        const res = await run(licd, activated, kill);
        results.push(res);
        process.stderr.write(`${activated ? 'socket activation' : 'port bound by licproxy'} run ${r + 1}: ${JSON.stringify(res)}\n`);
      }
      const f = (x: number): string => `${Math.round(x)} ms`;
      rows.push(
        `| ${activated ? 'passed by systemd (LISTEN_FDS)' : 'bound by licproxy'} | ${results.map((x) => `${x.kept}/${HELD}`).join(', ')} | ` +
          `${results.map((x) => x.seatsLost).join(', ')} | ${f(median(results.map((x) => x.orphanedMs)))} | ` +
          `${f(median(results.map((x) => x.closedMs)))} (${results.map((x) => x.refused).join(', ')} connects refused) | ` +
          `${f(median(results.map((x) => x.servedMs)))} |`,
      );
    }
  } finally {
    for (const pid of kill) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    await licd.stop();
  }
  console.log(`primary SIGKILL with global.workers: 2, ${HELD} held license connections, ${RUNS} runs per variant, node ${process.version}\n`);
  console.log(
    '| listening socket | held connections kept (per run) | seats lost (per run) | kill -> both workers stopped accepting (median) | port closed: first refused connect -> next completed one (median) | kill -> first new client served by the replacement (median) |',
  );
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}

await main();
process.exit(0);
