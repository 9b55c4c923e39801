/** Reading a `--cpu-prof` profile (bench/profile.ts, bench/light-upstream.ts --profile). */
export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Self time by function (name + file:line), in ms, from the samples and their time deltas. */
export function selfTimes(p: CpuProfile): { total: number; rows: { key: string; ms: number }[] } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const ms = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const n = byId.get(p.samples[i]!)!;
    const d = (p.timeDeltas[i + 1] ?? 0) / 1000;
    total += d;
    const f = n.callFrame;
    const file = f.url.replace(/^.*\/(node_modules|src|bench)\//, '$1/').replace(/^node:/, '');
    const key = f.url ? `${f.functionName || '(anonymous)'} ${file}:${f.lineNumber + 1}` : f.functionName;
    ms.set(key, (ms.get(key) ?? 0) + d);
  }
  const rows = [...ms].map(([key, v]) => ({ key, ms: v })).sort((a, b) => b.ms - a.ms);
  return { total, rows };
}

