/**
 * The Markdown report: one table per workload with per-target medians (min-max), the licproxy ratios, and the
 * issue's targets with a verdict each.
 */
import { fmt, spread, type Spread } from './summary.ts';
import type { TargetSpec } from './targets/target.ts';
import type { Figures, MetricDef, Workload, WorkloadName } from './workloads/workload.ts';

export interface Cell {
  figures: Figures[];
  errors: string[];
  notes: string[];
}

export interface WorkloadResult {
  workload: Workload;
  description: string;
  /** Target names in run order. */
  targets: string[];
  cells: Map<string, Cell>;
}

export interface RunInfo {
  date: string;
  command: string;
  machine: string[];
  settings: string[];
  targets: readonly TargetSpec[];
  skipped: readonly { name: string; reason: string }[];
  elapsedSeconds: number;
  reps: number;
}

function cellSpread(cell: Cell | undefined, key: string): Spread | null {
  return cell ? spread(cell.figures.map((f) => f[key])) : null;
}

function showSpread(s: Spread | null, m: MetricDef): string {
  if (!s) return '-';
  const d = m.digits;
  if (s.n === 1 || s.min === s.max) return fmt(s.median, d);
  return `${fmt(s.median, d)} (${fmt(s.min, d)}-${fmt(s.max, d)})`;
}

function median(r: WorkloadResult, target: string, key: string): number | null {
  return cellSpread(r.cells.get(target), key)?.median ?? null;
}

function ratio(a: number | null, b: number | null): number | null {
  return a === null || b === null || b === 0 ? null : a / b;
}

const isSubject = (t: TargetSpec) => t.kind === 'licproxy';

function workloadSection(r: WorkloadResult, specs: readonly TargetSpec[]): string[] {
  const w = r.workload;
  const out: string[] = [`## ${w.title} (\`${w.name}\`)`, '', r.description + '.', ''];
  out.push(`| target | ${w.metrics.map((m) => m.label).join(' | ')} | runs |`);
  out.push(`|---|${w.metrics.map(() => '---:').join('|')}|---:|`);
  for (const name of r.targets) {
    const cell = r.cells.get(name);
    const ok = cell?.figures.length ?? 0;
    const failed = cell?.errors.length ?? 0;
    out.push(`| ${name} | ${w.metrics.map((m) => showSpread(cellSpread(cell, m.key), m)).join(' | ')} | ${ok}${failed ? ` (+${failed} failed)` : ''} |`);
  }
  const ratioMetrics = w.metrics.filter((m) => m.ratio);
  const subjects = r.targets.filter((n) => specs.find((s) => s.name === n && isSubject(s)));
  const others = r.targets.filter((n) => !subjects.includes(n));
  if (ratioMetrics.length > 0 && subjects.length > 0 && others.length > 0) {
    out.push('', `| ratio (medians) | ${ratioMetrics.map((m) => `${m.label} ${m.better === 'higher' ? '(higher is better)' : '(lower is better)'}`).join(' | ')} |`);
    out.push(`|---|${ratioMetrics.map(() => '---:').join('|')}|`);
    for (const sub of subjects) {
      for (const o of others) {
        const cells = ratioMetrics.map((m) => {
          const v = ratio(median(r, sub, m.key), median(r, o, m.key));
          return v === null ? '-' : `${v.toFixed(2)}x`;
        });
        out.push(`| ${sub} / ${o} | ${cells.join(' | ')} |`);
      }
    }
  }
  const remarks: string[] = [];
  for (const name of r.targets) {
    const cell = r.cells.get(name);
    for (const e of cell?.errors ?? []) remarks.push(`- ${name}: failed: ${e.split('\n')[0]}`);
    for (const n of new Set(cell?.notes ?? [])) remarks.push(`- ${name}: ${n}`);
  }
  if (remarks.length > 0) out.push('', ...remarks.slice(0, 30));
  out.push('');
  return out;
}

interface Goal {
  workload: WorkloadName;
  key: string;
  what: string;
  /** Against HAProxy: licproxy / haproxy must be >= (higher) or <= (lower) this; absolute: the value itself. */
  kind: 'ratio-min' | 'ratio-max' | 'abs-max';
  bound: number;
  unit?: string;
}

/** The performance issue's targets. */
export const GOALS: readonly Goal[] = [
  { workload: 'short', key: 'perCpu', what: 'short transactions: tx per proxy CPU-second', kind: 'ratio-min', bound: 0.8, unit: 'tx/CPU-s' },
  { workload: 'ping', key: 'perCpu', what: 'persistent ping-pong: req per proxy CPU-second', kind: 'ratio-min', bound: 0.9, unit: 'req/CPU-s' },
  { workload: 'bulk', key: 'mbps', what: 'bulk MB/s', kind: 'ratio-min', bound: 0.8, unit: 'MB/s' },
  { workload: 'idle', key: 'kbPerConn', what: 'idle memory per held connection', kind: 'abs-max', bound: 6, unit: 'KiB' },
  { workload: 'ping', key: 'p99', what: 'persistent ping-pong p99 latency', kind: 'ratio-max', bound: 1.1, unit: 'ms' },
];

function goalsSection(results: readonly WorkloadResult[], specs: readonly TargetSpec[]): string[] {
  const haproxies = specs.filter((s) => s.kind === 'haproxy' && !s.check).map((s) => s.name);
  const out = ['## The issue\'s targets', ''];
  out.push(`| goal | target | licproxy | ${haproxies.map((h) => `vs ${h}`).join(' | ')} |`);
  out.push(`|---|---|---:|${haproxies.map(() => '---:').join('|')}|`);
  let rows = 0;
  for (const g of GOALS) {
    const r = results.find((x) => x.workload.name === g.workload);
    if (!r || !r.targets.includes('licproxy')) continue;
    const mine = median(r, 'licproxy', g.key);
    const metric = r.workload.metrics.find((m) => m.key === g.key)!;
    const mineText = mine === null ? '-' : `${fmt(mine, metric.digits)}${g.unit ? ` ${g.unit}` : ''}`;
    let want: string;
    let cols: string[];
    if (g.kind === 'abs-max') {
      want = `<= ${g.bound} ${g.unit ?? ''}`.trim();
      const met = mine !== null && mine <= g.bound;
      cols = haproxies.map((h) => {
        const theirs = median(r, h, g.key);
        return `${theirs === null ? '-' : `${fmt(theirs, metric.digits)} ${g.unit ?? ''}`}`;
      });
      out.push(`| ${g.what} | ${want} | ${mineText} ${mine === null ? '' : met ? '**met**' : '**not met**'} | ${cols.join(' | ')} |`);
    } else {
      want = `${g.kind === 'ratio-min' ? '>=' : '<='} ${g.bound}x HAProxy`;
      cols = haproxies.map((h) => {
        const q = ratio(mine, median(r, h, g.key));
        if (q === null) return '-';
        const met = g.kind === 'ratio-min' ? q >= g.bound : q <= g.bound;
        return `${q.toFixed(2)}x ${met ? '**met**' : '**not met**'}`;
      });
      out.push(`| ${g.what} | ${want} | ${mineText} | ${cols.join(' | ')} |`);
    }
    rows++;
  }
  if (rows === 0) return [];
  out.push('', 'Ratios are licproxy median / HAProxy median over the repetitions above; both HAProxy variants are shown (one thread is the like-for-like comparison with single-threaded Node; per CPU-second the thread count mostly cancels out).', '');
  return out;
}

export function renderReport(info: RunInfo, results: readonly WorkloadResult[]): string {
  const out: string[] = [
    '# licproxy benchmark',
    '',
    `- date: ${info.date}`,
    `- command: \`${info.command}\``,
    ...info.machine.map((m) => `- ${m}`),
    `- repetitions: ${info.reps} per target, targets alternated A B C D A B C D; figures are medians (min-max)`,
    `- run time: ${Math.round(info.elapsedSeconds)} s`,
    ...(info.reps === 1 ? ['- **one repetition only: the figures are indicative, not a comparison to act on** (run without `--quick`)'] : []),
    ...info.settings.map((s) => `- ${s}`),
    '',
    'Proxy CPU = utime + stime of the proxy process tree from /proc over the measured window (HAProxy threads are in one pid; the NGINX figure includes its master, which is idle). "per proxy CPU-s" divides the work done by that CPU time: on a shared 2-core machine this is the fair figure, since raw throughput also depends on how much CPU the load generator and the backend got.',
    '',
    '### Targets',
    '',
    ...info.targets.map((t) => `- \`${t.name}\`: ${t.description}`),
    ...info.skipped.map((s) => `- \`${s.name}\`: **skipped**: ${s.reason}`),
    '',
  ];
  out.push(...goalsSection(results, info.targets));
  for (const r of results) out.push(...workloadSection(r, info.targets));
  return out.join('\n');
}
