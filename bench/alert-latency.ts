/**
 * Time from a server's death to the webhook receiving the `down` alert, and from its return to the `up` alert
 * (SPEC 10; the figure for the closing note of issue 16):
 *
 *   node --import tsx bench/alert-latency.ts [--rounds 5] [--interval 1s] [--fall 3]
 *
 * A real `licproxy run` (child process, from the sources) checks one server, itself a child process (an echo
 * server) that is SIGKILLed and started again on the same port each round; the webhook receiver runs here. The
 * baseline printed beside it is the detection bound the check settings give (the check `interval` while UP,
 * `fast_interval` x (`fall` - 1) until DOWN is confirmed): what is above it is licproxy's own cost (event, queue,
 * POST). Bounded: --rounds (at most 50) and a deadline on every wait.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../src/common/duration.ts';
import { freePorts } from '../test/helpers/ports.ts';
import { LICPROXY } from '../test/helpers/cli.ts';
import { fmt } from './lib/summary.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, interval: { type: 'string', default: '1s' }, fall: { type: 'string', default: '3' } } });
const ROUNDS = Math.min(50, Math.max(1, Number(values.rounds)));
const INTERVAL = parseDuration(values.interval ?? '1s') ?? 1_000;
const FAST = Math.max(50, Math.round(INTERVAL / 4));
const FALL = Math.min(10, Math.max(1, Number(values.fall)));
const DEADLINE_MS = 30_000;

const received: Array<{ at: number; event: string }> = [];
const waiters: Array<() => void> = [];
const receiver = createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8').on('data', (s: string) => (body += s));
  req.on('end', () => {
    const at = performance.timeOrigin + performance.now();
    try {
      received.push({ at, event: String((JSON.parse(body) as { event?: unknown }).event) });
    } catch {
      received.push({ at, event: '?' });
    }
    res.end('ok');
    for (const w of waiters.splice(0)) w();
  });
});
await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

function nextAlert(event: string, after: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`no ${event} alert within ${DEADLINE_MS} ms`)), DEADLINE_MS);
    const look = (): void => {
      const hit = received.find((r) => r.event === event && r.at >= after);
      if (hit) {
        clearTimeout(deadline);
        resolve(hit.at);
      } else waiters.push(look);
    };
    look();
  });
}

/** An echo server child; resolves with it and the wall-clock time it started listening (its own clock reading). */
function startEcho(port: number): Promise<{ child: ChildProcess; listeningAt: number }> {
  const code = `require('net').createServer((s)=>{s.on('error',()=>{});s.pipe(s)}).listen(${port},'127.0.0.1',()=>console.log(performance.timeOrigin+performance.now()))`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error('echo server did not start')), DEADLINE_MS);
    child.stdout!.setEncoding('utf8').once('data', (s: string) => {
      clearTimeout(deadline);
      resolve({ child, listeningAt: Number(s.trim()) });
    });
  });
}

function get(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: false, timeout: 2_000 }, (res) => {
      let b = '';
      res.setEncoding('utf8').on('data', (s: string) => (b += s));
      res.on('end', () => resolve(b));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function until(what: string, cond: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + DEADLINE_MS;
  while (Date.now() < end) {
    if (await cond().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const [serverPort, statsPort, frontPort] = await freePorts(3);
const dir = mkdtempSync(join(tmpdir(), 'lpx-alert-bench-'));
const file = join(dir, 'licproxy.yaml');
writeFileSync(file, `global: { log_level: warn, grace: 0s }
stats:
  listen: 127.0.0.1:${statsPort}
pools:
  p:
    check: { type: tcp, interval: ${INTERVAL}ms, fast_interval: ${FAST}ms, down_interval: ${FAST}ms, timeout: ${FAST}ms, rise: 1, fall: ${FALL} }
    servers:
      - { name: s, address: 127.0.0.1:${serverPort} }
frontends:
  - { name: f, listen: 127.0.0.1:${frontPort}, pool: p }
alerts:
  - { url: "${hook}", format: json, events: [down, up], min_interval: 0s }
`);
let echo = (await startEcho(serverPort!)).child;
const lp = spawn(process.execPath, [LICPROXY, 'run', '-c', file], { stdio: ['ignore', 'ignore', 'inherit'] });
const downMs: number[] = [];
const upMs: number[] = [];
try {
  const isUp = async (): Promise<boolean> => (await get(statsPort!, '/metrics')).includes('licproxy_server_up{pool="p",server="s"} 1');
  await until('the server UP', isUp);
  for (let i = 0; i < ROUNDS; i++) {
    const killedAt = performance.timeOrigin + performance.now();
    echo.kill('SIGKILL');
    const downAt = await nextAlert('down', killedAt);
    downMs.push(downAt - killedAt);
    const started = await startEcho(serverPort!);
    echo = started.child;
    // From the moment it listens (the child's own reading of the clock): node's start-up is not licproxy's time.
    upMs.push((await nextAlert('up', downAt)) - started.listeningAt);
    await until('the server UP', isUp);
    process.stderr.write(`round ${i + 1}/${ROUNDS}: down ${fmt(downMs[i]!)} ms, up ${fmt(upMs[i]!)} ms\n`);
  }
} finally {
  echo.kill('SIGKILL');
  lp.kill('SIGKILL');
  receiver.close();
  rmSync(dir, { recursive: true, force: true });
}

const sorted = (a: number[]): number[] => [...a].sort((x, y) => x - y);
const stat = (a: number[]): string => {
  const s = sorted(a);
  return `min ${fmt(s[0]!)} / median ${fmt(s[Math.floor(s.length / 2)]!)} / max ${fmt(s[s.length - 1]!)} ms`;
};
const bound = INTERVAL + FAST * (FALL - 1);
console.log(`alert latency over ${ROUNDS} rounds (tcp check: interval ${INTERVAL} ms, fast_interval ${FAST} ms, fall ${FALL}, rise 1)`);
console.log(`  server SIGKILLed -> down alert received: ${stat(downMs)}`);
console.log(`  nominal detection time of the checks:     ${bound} ms (interval + fast_interval x (fall - 1)); median / nominal = ${fmt(sorted(downMs)[Math.floor(downMs.length / 2)]! / bound)}`);
console.log(`  server listening again -> up alert:      ${stat(upMs)} (the check's down_interval is ${FAST} ms)`);
process.exit(0);
