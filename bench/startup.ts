/**
 * Start-up cost of licproxy: the compiled package (dist/, what `bin/licproxy.js` runs since issue 18) against the
 * TypeScript sources through tsx (what every process ran before), for one process and for `global.workers: 4`.
 *
 *   npm run build && node --import tsx bench/startup.ts [--runs 5]
 *
 * For each variant and each run, a fresh `licproxy run -c <file>` (one frontend on a free loopback port, one pool,
 * no health check) is timed from spawn to its "licproxy running" log line (every listener open, every worker
 * started), then its VmRSS is read 500 ms later (the primary alone, and the process tree), then it gets SIGTERM.
 * tsx keeps compiled files in a cache under $TMPDIR: "cold" gives every run an empty TMPDIR (a systemd unit with
 * PrivateTmp=yes starts cold every time), "warm" shares one warmed TMPDIR. Medians are printed, with the ratios
 * against tsx cold measured in the same run. Bounded: every wait has a deadline, children are killed at the end.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO } from './lib/node-script.ts';
import { freePort } from './lib/ports.ts';
import { rssKb, treePids, treeRssKb } from './lib/proc.ts';
import { staleDist } from '../test/release/dist.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const RUNS = Math.min(20, Math.max(1, Number(values.runs)));
const START_DEADLINE_MS = 60_000;
const SETTLE_MS = 500;

interface Variant {
  name: string;
  args: string[];
  /** A fresh TMPDIR per run (tsx's cache cold), or this shared one. */
  tmp: 'fresh' | string;
}

interface Sample {
  startMs: number;
  primaryKb: number;
  treeKb: number;
  processes: number;
}

async function configFile(dir: string, workers: number): Promise<string> {
  const file = join(dir, `licproxy-${workers}.yaml`);
  const [listen, server] = [await freePort(), await freePort()];
  writeFileSync(
    file,
    [
      `global: { log_level: info, workers: ${workers} }`,
      'pools:',
      '  lic:',
      `    ports: { license: ${server} }`,
      '    check: { type: none }',
      '    servers:',
      '      - { name: a, host: 127.0.0.1 }',
      'frontends:',
      `  - { name: lic, listen: 127.0.0.1:${listen}, pool: lic, port: license }`,
      '',
    ].join('\n'),
  );
  return file;
}

async function once(v: Variant, file: string): Promise<Sample> {
  const tmp = v.tmp === 'fresh' ? mkdtempSync(join(tmpdir(), 'licproxy-startup-tmp-')) : v.tmp;
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, [...v.args, 'run', '-c', file], { cwd: REPO, env: { ...process.env, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    const startMs = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${v.name}: no "licproxy running" within ${START_DEADLINE_MS} ms: ${err}`)), START_DEADLINE_MS);
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (out.includes('"msg":"licproxy running"')) {
          clearTimeout(timer);
          resolve(Number(process.hrtime.bigint() - started) / 1e6);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${v.name}: exited ${code} before running: ${err}`));
      });
    });
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const pid = child.pid!;
    return { startMs, primaryKb: rssKb(pid), treeKb: treeRssKb(pid), processes: treePids(pid).length };
  } finally {
    child.kill('SIGTERM');
    const guard = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(guard);
    if (v.tmp === 'fresh') rmSync(tmp, { recursive: true, force: true });
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const stale = staleDist();
  if (stale !== null) throw new Error(stale);
  const dir = mkdtempSync(join(tmpdir(), 'licproxy-startup-'));
  const warmTmp = mkdtempSync(join(tmpdir(), 'licproxy-startup-warm-'));
  try {
    const tsx = ['--import', 'tsx', join(REPO, 'src/cli/licproxy.ts')];
    const variants: Variant[] = [
      { name: 'tsx, cold cache', args: tsx, tmp: 'fresh' },
      { name: 'tsx, warm cache', args: tsx, tmp: warmTmp },
      { name: 'dist (compiled)', args: [join(REPO, 'bin/licproxy.js')], tmp: 'fresh' },
    ];
    const rows: string[] = [];
    for (const workers of [1, 4]) {
      const file = await configFile(dir, workers);
      // Warms tsx's cache for the "warm" variant (not counted).
      await once(variants[1]!, file);
      const results = new Map<string, Sample[]>(variants.map((v) => [v.name, []]));
      // Interleaved, so a change in the machine's load touches every variant alike.
      for (let i = 0; i < RUNS; i++) for (const v of variants) results.get(v.name)!.push(await once(v, file));
      const base = results.get(variants[0]!.name)!;
      for (const v of variants) {
        const s = results.get(v.name)!;
        const start = median(s.map((x) => x.startMs));
        const tree = median(s.map((x) => x.treeKb)) / 1024;
        const primary = median(s.map((x) => x.primaryKb)) / 1024;
        const ratio = (a: number, b: number): string => (a / b).toFixed(2);
        rows.push(
          `| ${workers === 1 ? '1 process' : `4 workers (${s[0]!.processes} processes)`} | ${v.name} | ${start.toFixed(0)} ms ` +
            `(${Math.min(...s.map((x) => x.startMs)).toFixed(0)}-${Math.max(...s.map((x) => x.startMs)).toFixed(0)}) | ${primary.toFixed(1)} MB | ${tree.toFixed(1)} MB ` +
            `| ${ratio(start, median(base.map((x) => x.startMs)))} | ${ratio(tree, median(base.map((x) => x.treeKb)) / 1024)} |`,
        );
      }
    }
    console.log(`licproxy start-up, node ${process.version}, ${RUNS} runs per variant (medians; start-up min-max in brackets)\n`);
    console.log('| balancer | runs from | spawn -> "licproxy running" | RSS primary | RSS all processes | start-up vs tsx cold | RSS vs tsx cold |');
    console.log('|---|---|---|---|---|---|---|');
    for (const r of rows) console.log(r);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(warmTmp, { recursive: true, force: true });
  }
}

await main();
