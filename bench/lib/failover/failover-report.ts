/** The Markdown report of `bench/failover.ts`: one table, faults by balancer, with the targets' verdicts. */
import type { FaultReport } from './fault-analysis.ts';
import { FAILOVER_TARGETS, type FailoverTargetName } from './failover-targets.ts';

export type Fault = 'kill' | 'hang';

export const FAULTS: Record<Fault, string> = {
  kill: 'killed primary (SIGKILL: its port refuses)',
  hang: 'hung primary (SIGSTOP: connects complete, nothing answers)',
};

export interface FailoverRow {
  fault: Fault;
  target: FailoverTargetName;
  /** ms from the fault to the balancer marking the primary DOWN; null = not within the window. */
  downMs: number | null;
  /** How long the run watched after the fault. */
  windowMs: number;
  report: FaultReport | null;
  /** The measurement could not run (target missing, start failure). */
  error?: string;
}

export interface FailoverRunInfo {
  date: string;
  command: string;
  machine: string[];
  settings: string[];
  skipped: Array<{ name: string; reason: string }>;
  elapsedSeconds: number;
}

const s = (ms: number | null): string => (ms === null ? '-' : ms < 1_000 ? `${ms} ms` : `${(ms / 1000).toFixed(2)} s`);

/** The goals the task set for licproxy, with how each row is judged; null = no goal for that row. */
export function verdict(row: FailoverRow): { goal: string; met: boolean } | null {
  const r = row.report;
  if (!r || !row.target.startsWith('licproxy')) return null;
  if (row.fault === 'kill') return { goal: '0 failed', met: r.failedAfter === 0 };
  if (row.target === 'licproxy') return { goal: 'gap <= 3 s', met: r.firstSecondaryGrantMs !== null && r.firstSecondaryGrantMs <= 3_000 };
  return { goal: 'gap < 1 s', met: r.firstSecondaryGrantMs !== null && r.firstSecondaryGrantMs < 1_000 };
}

export function renderFailoverReport(info: FailoverRunInfo, rows: readonly FailoverRow[], partial = false): string {
  const out: string[] = [
    `# Failover gap: licproxy vs HAProxy${partial ? ' (partial: the run was interrupted)' : ''}`,
    '',
    `${info.date}, ${info.elapsedSeconds}s. Command: \`${info.command}\``,
    '',
    ...info.machine.map((m) => `- ${m}`),
    ...info.settings.map((m) => `- ${m}`),
    '',
    '**Balancers**',
    '',
    ...FAILOVER_TARGETS.map((t) => `- \`${t.name}\`: ${t.description}`),
    ...info.skipped.map((x) => `- skipped \`${x.name}\`: ${x.reason}`),
    '',
    '**Columns**: *marked DOWN* = fault to the balancer marking the primary DOWN (licproxy: its event log; HAProxy: its',
    'stats socket, polled every 50 ms). *gap* = fault to the first checkout granted by the secondary. *failed* = new',
    'sessions (begun once the fault was complete) that failed in any way (refused, closed, timed out). *cut* = sessions',
    'in flight on the primary at the fault that failed (for a kill, also those begun before the process was gone, whose',
    'connections its dying listener had accepted): the server takes them down whatever the balancer does.',
    '',
    '| fault | balancer | marked DOWN | gap | failed | cut | new sessions (ok / all) | goal |',
    '|---|---|---:|---:|---:|---:|---:|---|',
  ];
  for (const row of rows) {
    const r = row.report;
    if (!r) {
      out.push(`| ${row.fault} | \`${row.target}\` | - | - | - | - | - | not measured: ${row.error ?? '?'} |`);
      continue;
    }
    const v = verdict(row);
    const never = `none in ${s(row.windowMs)}`;
    out.push(
      [
        '',
        row.fault,
        `\`${row.target}\``,
        row.downMs === null ? never : s(row.downMs),
        r.firstSecondaryGrantMs === null ? never : s(r.firstSecondaryGrantMs),
        String(r.failedAfter),
        `${r.cut} / ${r.inFlight}`,
        `${r.after - r.failedAfter} / ${r.after}`,
        v ? `${v.goal}: ${v.met ? 'met' : '**missed**'}` : '',
        '',
      ].join(' | ').trim(),
    );
  }
  out.push(
    '',
    '**Reading it**',
    '',
    '- A killed server refuses connections: licproxy counts each refused client connect as a failed check at once',
    '  (passive health) and redispatches the client, so the clients that meet the dead server are moved, not failed.',
    '  HAProxy waits for its checks (`fall` x the check interval), and a `backup` server takes no client while an',
    '  active one is UP, so its retries and redispatch land on the dead server again and the client is closed.',
    '- A hung server completes TCP handshakes from its listen backlog: a connect-only check passes. Only an',
    '  application-level check (licproxy `lmstat`, by timeout) or watching answers (`observe: response`) sees it.',
    '  HAProxy marks it DOWN only once the load has filled the hung process\'s accept queue (about 500 connections',
    '  here) and check connects start to time out: how soon depends on the client rate, not on the checks.',
    '- Check-driven gaps depend on where the fault falls in the check cycle: HAProxy from 2 x fastinter to inter +',
    '  2 x fastinter (seeds: 10-40 s, defaults: 4-6 s); the fault here comes a few seconds after the balancer started',
    '  and ran its first checks, near the upper end for HAProxy. licproxy `lmstat` on a hung server: at most',
    '  interval + timeout + 2 x (fast_interval + timeout) = 3 s.',
    '- The hung rows\' failed sessions are the clients sent to the hung server before it was marked DOWN; with the',
    '  default `on_down: keep` they wait for their own answer timeout (with `on_down: close` they would be',
    '  disconnected at DOWN and could retry at once).',
  );
  out.push('', '**Failures of new sessions, by kind** (numbers folded to N)', '');
  for (const row of rows) {
    const errs = row.report?.errors ?? [];
    if (errs.length === 0) continue;
    out.push(`- ${row.fault} / \`${row.target}\`: ${errs.map((e) => `${e.count} x \`${e.error}\``).join('; ')}`);
  }
  out.push('');
  return out.join('\n');
}
