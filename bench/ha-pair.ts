/**
 * Balancer pair failover (issue 15, SPEC 9): conf/examples/ha-pair/ run for real in network namespaces (two
 * licproxy + keepalived instances, a licd triad, two licd seat servers, Redis, clients on the VIP), the licproxy
 * holding the VIP SIGKILLed, `--runs` times. The scenario is test/helpers/ha-pair-lab.ts (its test is
 * test/ha/vip-pair.test.ts). Needs root, ip netns, keepalived, redis-server and curl.
 *
 *   node --import tsx bench/ha-pair.ts [--runs 3] [--bound 8] [--held 10] [--out bench/results/ha-pair.md]
 *
 * Prints per run: VIP move time, kill -> first granted checkout through the other instance, held licenses lost,
 * misrouted token connections; writes the table to `--out` (when given).
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { describePair, haPairUnavailable, runPairFailover, type PairFault, type PairResult } from '../test/helpers/ha-pair-lab.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    bound: { type: 'string', default: '8' },
    held: { type: 'string', default: '10' },
    faults: { type: 'string', default: 'kill,power-off' },
    out: { type: 'string' },
  },
});
const runs = Number(values.runs);
const faults = values.faults.split(',') as PairFault[];
for (const f of faults) if (f !== 'kill' && f !== 'power-off') throw new Error(`--faults: kill or power-off, got ${f}`);
const why = haPairUnavailable();
if (why) {
  console.error(why);
  process.exit(2);
}

const started = new Date();
const load = loadavg().map((x) => x.toFixed(2)).join(' / ');
const results: PairResult[] = [];
for (let i = 0; i < runs; i++) {
  for (const fault of faults) {
    console.log(`run ${i + 1} of ${runs}: ${fault}`);
    const r = await runPairFailover({ fault, boundClients: Number(values.bound), heldClients: Number(values.held), log: (l) => console.log(`  ${l}`) });
    for (const line of describePair(r)) console.log(`  ${line}`);
    results.push(r);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rows = results.map(
  (r, i) =>
    `| ${Math.floor(i / faults.length) + 1} | ${r.fault} | ${r.killed} -> ${r.survivor} | ${r.masterMs ?? '?'} ms (${r.vipMoveMs} ms) | ${r.firstGrantMs} ms | ${r.heldLost + (r.holdLost ? 1 : 0)} of ${r.held + 1} | ${r.misrouted} | ${r.boundOk.before} / ${r.boundOk.after} | ${r.boundFailed} |`,
);
const report = [
  '# Balancer pair: the instance holding the VIP fails',
  '',
  `${started.toISOString().slice(0, 16).replace('T', ' ')} UTC. Command: \`node --import tsx bench/ha-pair.ts --runs ${runs} --faults ${values.faults} --bound ${values.bound} --held ${values.held}\``,
  '',
  `- ${cpus().length} cores, load average at start ${load}; Node ${process.version}; keepalived and redis-server from Debian`,
  '- conf/examples/ha-pair/ as written (addresses, ports and paths changed): keepalived `advert_int 1`, track_script',
  '  `curl /health` every 1 s, `fall 2`; two network namespaces on a bridge, licd servers, Redis and clients in a third',
  `- Redis-shared state (\`cluster:\`): ${results[0]?.clusterShared ? 'yes' : 'no (licproxy did not know the key in this run)'}; licd triad with the example\'s \`redundancy.hold_on_disconnect\``,
  '- clients: `licproxy checkout --hold` + held clients of the client library (the triad, RESUME by handle), a short',
  '  checkout every 50 ms (the triad), source-bound clients from distinct addresses (license port, then TOKENS on the',
  '  token port of the seats pool)',
  '',
  '**Faults**: *kill* = SIGKILL of the licproxy process holding the VIP, its machine up (its kernel closes the',
  'connections to licd at once). *power-off* = that machine lost: its link down first, then every process in it',
  'SIGKILLed (nothing is closed towards the network).',
  '',
  '**Columns**: *VIP move* = kill to the other instance\'s keepalived entering MASTER (the notify script\'s timestamp;',
  'keepalived sets the VIP as it enters MASTER), in brackets kill to the VIP seen on its eth0 by polling `ip addr` (late',
  'by the poll itself on a loaded machine). *first grant* = kill to',
  'the first checkout granted that began after the kill. *held lost* = held licenses whose RESUME failed (the CLI',
  'client printed "license lost", or the library reported the handle lost). *misrouted* = token connections answered',
  'UNKNOWN_HANDLE (license and token port on different servers). *bound ok* = bound checkouts with tokens served',
  'before the kill / after the move. *failed* = bound checkouts that failed during the move (refused, reset).',
  '',
  '| run | fault | VIP | VIP move | first grant | held lost | misrouted | bound ok | failed |',
  '|---|---|---|---:|---:|---:|---:|---:|---:|',
  ...rows,
  '',
  ...faults.map((f) => {
    const of = results.filter((r) => r.fault === f);
    return `- ${f}: median VIP move ${median(of.map((r) => r.masterMs ?? r.vipMoveMs))} ms, median kill -> first grant ${median(of.map((r) => r.firstGrantMs))} ms, held lost ${of.map((r) => r.heldLost + (r.holdLost ? 1 : 0)).join(' / ')} of ${of[0]!.held + 1}, misrouted ${of.reduce((n, r) => n + r.misrouted, 0)}`;
  }),
  '',
];
console.log(report.join('\n'));
if (values.out) writeFileSync(values.out, report.join('\n'));
