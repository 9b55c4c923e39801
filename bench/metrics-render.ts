/**
 * What one /metrics render costs for 100 pools x 10 servers (2 lmstat features each): the figure that
 * test/stats/render-prometheus.test.ts used to assert (a CPU threshold fails on a loaded machine).
 *
 *   node --import tsx bench/metrics-render.ts [--renders 15] [--pools 100] [--servers 10]
 *
 * Baseline, in the same run and on the same snapshot: JSON.stringify of it (a plain walk of the same data), so the
 * ratio holds whatever else the machine is doing. Each render follows a new snapshot (every check result newer),
 * as a scrape after a check round does. Bounded by --renders.
 */
import { parseArgs } from 'node:util';
import { PrometheusExporter } from '../src/stats/render-prometheus.ts';
import { largeSnapshot } from '../test/helpers/stats.ts';
import { fmt } from './lib/summary.ts';

const { values } = parseArgs({ options: { renders: { type: 'string', default: '15' }, pools: { type: 'string', default: '100' }, servers: { type: 'string', default: '10' } } });
const RENDERS = Math.min(200, Math.max(3, Number(values.renders)));
const POOLS = Math.min(1_000, Math.max(1, Number(values.pools)));
const SERVERS = Math.min(100, Math.max(1, Number(values.servers)));

const median = (a: number[]): number => [...a].sort((x, y) => x - y)[a.length >> 1]!;

/** Wall and CPU ms of `work` after each snapshot change, medians over RENDERS. */
async function cost(work: (snap: ReturnType<typeof largeSnapshot>) => unknown): Promise<{ wall: number; cpu: number }> {
  const snap = largeSnapshot(POOLS, SERVERS);
  await work(snap); // warm-up
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < RENDERS; i++) {
    snap.at += 1000;
    for (const pool of snap.pools) for (const s of pool.servers) s.lastCheck = { ...s.lastCheck!, at: snap.at };
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await work(snap);
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { wall: median(wall), cpu: median(cpu) };
}

const exporter = new PrometheusExporter();
let bytes = 0;
const baseline = await cost((snap) => JSON.stringify(snap));
const render = await cost(async (snap) => (bytes = (await exporter.render(snap)).length));

console.log(`# /metrics render cost\n`);
console.log(`command: \`node --import tsx bench/metrics-render.ts --renders ${RENDERS} --pools ${POOLS} --servers ${SERVERS}\``);
console.log(`${POOLS * SERVERS} servers, ${fmt(bytes)} bytes of exposition; medians of ${RENDERS} renders, each after a snapshot change.\n`);
console.log('| | wall | CPU | ratio (CPU) |');
console.log('|---|---:|---:|---:|');
console.log(`| baseline: JSON.stringify of the snapshot | ${fmt(baseline.wall)} ms | ${fmt(baseline.cpu)} ms | 1x |`);
console.log(`| /metrics render | ${fmt(render.wall)} ms | ${fmt(render.cpu)} ms | ${fmt(render.cpu / Math.max(0.001, baseline.cpu))}x |`);
console.log(`\nThe budget is 100 ms of CPU per scrape (SPEC).`);
