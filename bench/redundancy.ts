/**
 * licd redundancy figures (SPEC 4.3), direct to the daemons (no balancer):
 * - grant latency (CHECKOUT -> GRANTED) of a standalone licd, a backup pair and a triad, same run, same machine;
 * - failover gap: from the fault (SIGKILL, or SIGSTOP) of the master to the first GRANTED by the new master.
 *
 *   node --import tsx bench/redundancy.ts [--grants 2000] [--heartbeat 1s]
 */
import { LicdCluster } from '../test/helpers/licd-cluster.ts';
import { LineClient, spawnLicd } from '../test/helpers/licd.ts';

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : def;
};
const GRANTS = Number(arg('--grants', '2000'));
const HEARTBEAT = arg('--heartbeat', '1s');
const FEATURES = [{ name: 'LS-DYNA', count: 1000 }];

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function latency(port: number): Promise<{ p50: number; p99: number; perSec: number }> {
  const c = await LineClient.connect(port);
  const lat: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < GRANTS; i++) {
    const s = performance.now();
    const g = await c.request('CHECKOUT LS-DYNA');
    lat.push(performance.now() - s);
    const h = /handle=(\S+)/.exec(g)?.[1];
    if (!h) throw new Error(`unexpected ${g}`);
    await c.request(`CHECKIN ${h}`);
  }
  const secs = (performance.now() - t0) / 1000;
  c.destroy();
  return { p50: +pct(lat, 50).toFixed(3), p99: +pct(lat, 99).toFixed(3), perSec: Math.round(GRANTS / secs) };
}

/** Tries CHECKOUT on every member each 10 ms until one grants; returns when. */
async function firstGrant(set: LicdCluster, except: number, deadline: number): Promise<number> {
  while (Date.now() < deadline) {
    for (let i = 0; i < set.size; i++) {
      if (i === except || set.members[i]!.state !== 'running') continue;
      try {
        const c = await LineClient.connect(set.members[i]!.ports.license);
        const a = await c.request('CHECKOUT LS-DYNA', 1_000).catch(() => '');
        c.destroy();
        if (a.startsWith('GRANTED')) return Date.now();
      } catch {
        /* not up */
      }
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('no grant');
}

async function failover(mode: 'backup' | 'triad', fault: 'kill' | 'stop'): Promise<number> {
  const set = await LicdCluster.start({ mode, heartbeat: HEARTBEAT, features: FEATURES });
  try {
    const m = await set.waitSynced();
    const at = Date.now();
    if (fault === 'kill') await set.kill(m);
    else set.stop(m);
    const t = await firstGrant(set, m, Date.now() + 60_000);
    return t - at;
  } finally {
    await set.close();
  }
}

const out: Record<string, unknown> = { grants: GRANTS, heartbeat: HEARTBEAT };
const solo = await spawnLicd({ features: FEATURES });
try {
  out.standalone = await latency(solo.ports.license);
} finally {
  await solo.stop();
}
for (const mode of ['backup', 'triad'] as const) {
  const set = await LicdCluster.start({ mode, heartbeat: HEARTBEAT, features: FEATURES });
  try {
    const m = await set.waitSynced();
    out[`${mode} (replicated)`] = await latency(set.members[m]!.ports.license);
  } finally {
    await set.close();
  }
}
for (const mode of ['backup', 'triad'] as const) {
  for (const fault of ['kill', 'stop'] as const) out[`failover ${mode} ${fault} ms`] = await failover(mode, fault);
}
console.log(JSON.stringify(out, null, 2));
