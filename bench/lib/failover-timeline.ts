/**
 * Where the failover gap of bench/chaos.ts goes. Two watchers run beside the campaign and note every change:
 *
 * - licd: each member's `STATUS json` every `everyMs` (each member on its own loop, so a stopped one delays only
 *   itself): the moment a member starts or stops reporting (MASTER);
 * - licproxy: `/stats.json` every `everyMs`: whether the pool has a master for new clients, and which.
 *
 * `breakdown` then lays each fault and each long gap of successful checkouts against those changes:
 * fault -> a new master serves (licd) -> the balancer routes to it -> the first successful checkout.
 * Resolution is the polling interval (plus the answer time of a loaded machine).
 */
import { request } from 'node:http';
import { queryStatus } from '../../test/helpers/licd-cluster.ts';

export interface Change {
  at: number;
  /** `licd` (a member starts/stops serving) or `proxy` (the pool's master for new clients). */
  source: 'licd' | 'proxy';
  /** The member serving now (licd: the member that changed; proxy: the pool's master), or null for none. */
  master: string | null;
  member?: string;
}

export interface Watchers {
  changes: Change[];
  stop(): Promise<void>;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

function statsJson(port: number, timeout: number): Promise<unknown> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/stats.json', timeout }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body));
        } catch {
          resolve(null);
        }
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
    req.end();
  });
}

interface PoolView {
  name: string;
  available: boolean;
  servers: Array<{ name: string; status: string; master?: boolean }>;
}

export function watch(o: {
  members: Array<{ name: string; ports: { license: number }; state: string }>;
  statsPort: number;
  pool: string;
  everyMs?: number;
}): Watchers {
  const every = o.everyMs ?? 100;
  const changes: Change[] = [];
  let running = true;
  const loops = o.members.map(async (m) => {
    let last: boolean | null = null;
    while (running) {
      const s = m.state === 'running' ? await queryStatus(m.ports.license, 3 * every) : null;
      const serving = s?.master === true;
      if (s !== null || m.state !== 'running') {
        if (serving !== last) changes.push({ at: Date.now(), source: 'licd', member: m.name, master: serving ? m.name : null });
        last = serving;
      }
      await pause(every);
    }
  });
  loops.push(
    (async () => {
      let last: string | null | undefined;
      while (running) {
        const j = (await statsJson(o.statsPort, 3 * every)) as { pools?: PoolView[] } | null;
        const p = j?.pools?.find((x) => x.name === o.pool);
        if (p) {
          const m = p.available ? (p.servers.find((s) => s.master && s.status !== 'DOWN')?.name ?? '?') : null;
          if (m !== last) changes.push({ at: Date.now(), source: 'proxy', master: m });
          last = m;
        }
        await pause(every);
      }
    })(),
  );
  return {
    changes,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

const s1 = (ms: number) => (ms / 1000).toFixed(2);

/**
 * Per fault: the gap of successful checkouts around it and its parts. Then the longest gaps of the run with the
 * changes inside them (a gap may also come from a hand-back to the lowest order, not only from a fault).
 */
export function breakdown(o: {
  faults: Array<{ at: number; kind: string; member: string }>;
  successes: number[];
  changes: Change[];
  startedAt: number;
  top?: number;
}): string[] {
  const { successes, changes } = o;
  const rel = (t: number) => `${s1(t - o.startedAt)}s`;
  const before = (t: number) => {
    let lo = 0;
    let hi = successes.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (successes[mid]! <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo; // index of the first success after t
  };
  const out: string[] = ['failover breakdown (ms after the fault; polled every 100 ms):'];
  out.push('  fault            | last ok before | new master serves | balancer routes to it | first ok after | gap');
  const parts: Record<string, number[][]> = {};
  for (const f of o.faults) {
    const i = before(f.at);
    const lastOk = i > 0 ? successes[i - 1]! : o.startedAt;
    const firstOk = i < successes.length ? successes[i]! : null;
    const served = changes.find((c) => c.source === 'licd' && c.at >= f.at && c.master !== null && c.master !== f.member);
    const routed = served ? changes.find((c) => c.source === 'proxy' && c.at >= f.at && c.master === served.master) : undefined;
    const d = (t: number | null | undefined) => (t == null ? '-' : String(Math.round(t - f.at)));
    out.push(
      `  ${rel(f.at).padStart(7)} ${f.kind.padEnd(8)} | ${d(lastOk).padStart(14)} | ${(served ? `${served.master} ${d(served.at)}` : '-').padStart(17)} | ${(routed ? d(routed.at) : '-').padStart(21)} | ${d(firstOk).padStart(14)} | ${firstOk === null ? '-' : s1(firstOk - lastOk)} s`,
    );
    if (served && routed && firstOk !== null) {
      (parts[f.kind] ??= []).push([served.at - f.at, routed.at - served.at, firstOk - routed.at, firstOk - lastOk]);
    }
  }
  for (const [kind, rows] of Object.entries(parts)) {
    const med = (k: number) => {
      const xs = rows.map((r) => r[k]!).sort((a, b) => a - b);
      return Math.round(xs[Math.floor(xs.length / 2)]!);
    };
    out.push(
      `  ${kind} median of ${rows.length}: fault -> new master serves ${med(0)} ms, -> balancer routes to it ${med(1)} ms, -> first ok ${med(2)} ms; gap ${med(3)} ms`,
    );
  }
  const gaps: Array<[number, number]> = [];
  for (let i = 1; i < successes.length; i++) gaps.push([successes[i - 1]!, successes[i]!]);
  gaps.sort((a, b) => b[1] - b[0] - (a[1] - a[0]));
  out.push(`longest gaps, with the changes inside them:`);
  for (const [a, b] of gaps.slice(0, o.top ?? 5)) {
    const inside: Array<[number, string]> = [
      ...o.faults.filter((f) => f.at >= a && f.at <= b).map((f): [number, string] => [f.at, `${rel(f.at)} ${f.kind} ${f.member}`]),
      ...changes
        .filter((c) => c.at >= a && c.at <= b)
        .map((c): [number, string] => [c.at, `${rel(c.at)} ${c.source === 'licd' ? `licd ${c.member} ${c.master ? 'serves' : 'stops serving'}` : `balancer: ${c.master ?? 'no master'}`}`]),
    ];
    inside.sort((x, y) => x[0] - y[0]);
    out.push(`  ${s1(b - a)} s from ${rel(a)}: ${inside.map((x) => x[1]).join('; ') || 'no change seen'}`);
  }
  return out;
}
