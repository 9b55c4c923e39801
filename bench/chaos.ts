/**
 * The fault campaign of issue 14, as a figure: 200 held clients and a stream of short checkouts through licproxy
 * (a child process, `mode: master` pool with an lmstat check) in front of a licd triad (child processes), while the
 * master is SIGKILLed (restarted a second later) and SIGSTOPped (continued after 4 peer heartbeats), alternately,
 * for 90 s. Then every member runs again, every client goes, and the bench polls every member until no seat is in
 * use. The scenario is test/helpers/chaos-campaign.ts (its short version is test/failover/stranded-seats.test.ts).
 *
 *   node --import tsx bench/chaos.ts [--seconds 90] [--held 200] [--streams 8] [--fault-every 6] [--resume-window 30s] [--protocol licd|tcp]
 *
 * Prints: held licenses lost, failed new checkouts (count and %, by error), the longest gap with no successful
 * checkout, RESUME latency p50/p99 (held clients: connection lost to every handle resumed), and the seats in use on
 * every member when the clients had gone and after resume_window.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LicenseClient } from '../src/client/license-client.ts';
import { runCampaign } from '../test/helpers/chaos-campaign.ts';
import { LICPROXY, REPO } from '../test/helpers/cli.ts';
import { LicdCluster } from '../test/helpers/licd-cluster.ts';
import { breakdown, watch } from './lib/failover-timeline.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '90' },
    held: { type: 'string', default: '200' },
    streams: { type: 'string', default: '8' },
    'fault-every': { type: 'string', default: '6' },
    'resume-window': { type: 'string', default: '30s' },
    protocol: { type: 'string', default: 'licd' },
    heartbeat: { type: 'string', default: '600ms' },
  },
});
const SECONDS = Number(values.seconds);
const HELD = Number(values.held);
const STREAMS = Number(values.streams);
const FAULT_EVERY = Number(values['fault-every']);
const RESUME_WINDOW = values['resume-window']!;
// `licd` (default): the pool replays connections refused NOT_MASTER or cut before an answer; `tcp`: plain layer 4.
const PROTOCOL = values.protocol === 'tcp' ? 'tcp' : 'licd';
const HEARTBEAT = values.heartbeat!;
const msOf = (d: string) => Number(/^(\d+)/.exec(d)![1]) * (d.endsWith('ms') ? 1 : d.endsWith('m') ? 60_000 : 1_000);
for (const [k, v] of Object.entries({ SECONDS, HELD, STREAMS, FAULT_EVERY })) {
  if (!Number.isFinite(v) || v <= 0) {
    process.stderr.write(`bench/chaos: ${k.toLowerCase()} must be a positive number\n`);
    process.exit(1);
  }
}

function pct(xs: number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

const started = new Date();
const load = loadavg().map((x) => x.toFixed(2)).join(' / ');
const set = await LicdCluster.start({
  mode: 'triad',
  features: [{ name: 'LS-DYNA', count: HELD + 20 }],
  heartbeatTimeout: '10m',
  resumeWindow: RESUME_WINDOW,
  heartbeat: HEARTBEAT,
});
const dir = mkdtempSync(join(tmpdir(), 'chaos-'));
// Below the ephemeral range, as the cluster's ports (a listen(0) port could be taken by an outgoing connection).
const port = 20_000 + Math.floor(Math.random() * 7_000);
const statsPort = port + 1;
const file = join(dir, 'licproxy.yaml');
writeFileSync(
  file,
  `global: { log_level: warn }
stats: { listen: 127.0.0.1:${statsPort} }
pools:
  triad:
    mode: master
    protocol: ${PROTOCOL}
    check: { type: lmstat, interval: 1s, fast_interval: 250ms, down_interval: 2s, timeout: 500ms, rise: 2, fall: 2 }
    servers:
${set.members.map((m) => `      - { name: ${m.name}, address: 127.0.0.1:${m.ports.license} }`).join('\n')}
frontends:
  - { name: triad, listen: 127.0.0.1:${port}, pool: triad }
`,
);
const proxy = spawn(process.execPath, [LICPROXY, 'run', '-c', file], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
let proxyOut = '';
proxy.stdout!.setEncoding('utf8').on('data', (s: string) => (proxyOut = (proxyOut + s).slice(-20_000)));
proxy.stderr!.setEncoding('utf8').on('data', (s: string) => (proxyOut = (proxyOut + s).slice(-20_000)));
const cleanup = async () => {
  if (proxy.exitCode === null) proxy.kill('SIGKILL');
  await set.close();
  rmSync(dir, { recursive: true, force: true });
};
process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

try {
  await set.waitSynced(30_000);
  // The balancer is ready when a checkout through it is granted.
  const readyBy = Date.now() + 30_000;
  for (;;) {
    try {
      const c = await LicenseClient.connect('127.0.0.1', port, { resume: false, timeout: 1_000 });
      const g = await c.checkout('LS-DYNA');
      await c.checkin(g.handle);
      c.destroy();
      break;
    } catch (err) {
      if (Date.now() > readyBy) throw new Error(`licproxy not ready: ${String(err)}\n${proxyOut}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const t0 = Date.now();
  const watchers = watch({ members: set.members, statsPort, pool: 'triad' });
  const r = await runCampaign({
    set,
    port,
    held: HELD,
    streams: STREAMS,
    durationMs: SECONDS * 1000,
    faultEveryMs: FAULT_EVERY * 1000,
    heartbeatMs: msOf(HEARTBEAT),
    drainTimeoutMs: msOf(RESUME_WINDOW) + 30_000,
    count: HELD + 20,
    log: (l) => process.stderr.write(`  ${((Date.now() - t0) / 1000).toFixed(1)}s ${l}\n`),
  });
  await watchers.stop();
  const attempts = r.shortOk + r.shortFailed;
  const byCode = Object.entries(r.failures).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  const p50 = pct(r.resumeMs, 50);
  const p99 = pct(r.resumeMs, 99);
  const lines = [
    `chaos campaign, ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC; ${cpus().length} cores, load at start ${load}; Node ${process.version}`,
    `  licd triad (peer heartbeat ${HEARTBEAT}, resume_window ${RESUME_WINDOW}, heartbeat_timeout 10m), licproxy mode: master, protocol ${PROTOCOL} (lmstat check 1s / fast 250ms, fall 2)`,
    `  ${SECONDS}s, ${HELD} held, ${STREAMS} short-checkout streams, a master fault every ${FAULT_EVERY}s: ${r.faults.join('; ')}`,
    `held licenses lost:           ${r.heldLost} of ${r.held}${r.heldLost ? `: ${Object.entries(r.heldLostWhy).map(([k, v]) => `${k} ${v}`).join(', ')}` : ''}`,
    `failed new checkouts:         ${r.shortFailed} of ${attempts} (${attempts ? ((100 * r.shortFailed) / attempts).toFixed(2) : '0'}%): ${byCode}`,
    `longest gap with no checkout: ${(r.longestGapMs / 1000).toFixed(2)} s`,
    `RESUME latency (${r.resumeMs.length} resumes): p50 ${p50 === null ? '-' : `${(p50 / 1000).toFixed(2)} s`}, p99 ${p99 === null ? '-' : `${(p99 / 1000).toFixed(2)} s`}`,
    `seat invariant:               highest in use on the MASTER ${r.maxOnMaster} of ${HELD + 20}; ${r.overCount.length ? `above the count: ${r.overCount.join('; ')}` : 'no member above the count (STATUS every 250 ms)'}`,
    `seats in use per member:      ${r.inUseAtEnd.join(' / ')} when the clients had gone; ${r.inUseAfterDrain.join(' / ')} ${r.drainMs === null ? `still after ${RESUME_WINDOW} + 30s` : `${(r.drainMs / 1000).toFixed(1)} s later (resume_window ${RESUME_WINDOW})`}`,
  ];
  lines.push(...breakdown({ faults: r.faultAt, successes: r.successAt, changes: watchers.changes, startedAt: r.startedAt }));
  process.stdout.write(lines.join('\n') + '\n');
} finally {
  await cleanup();
}
