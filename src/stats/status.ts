/**
 * How a server status reads to a renderer: one classification, so the HTML colours, the CSV act/bck counts and
 * the `licproxy_server_up` gauge can never disagree about what `UP 1/3` or `DRAIN` means.
 */
import type { ServerStats, ServerStatus } from './snapshot.ts';

/** `going-down`: UP with failed checks pending (`UP 1/3`); `going-up`: DOWN with good checks pending (`DOWN 1/2`). */
/** `full`: UP, but out of seats of the pool's feature (SPEC 8.1): no new clients, its own clients kept. */
export type StatusKind = 'up' | 'down' | 'going-down' | 'going-up' | 'drain' | 'maint' | 'nolb' | 'full' | 'no-check';

export function statusKind(status: ServerStatus | string): StatusKind {
  switch (status) {
    case 'UP':
      return 'up';
    case 'DOWN':
      return 'down';
    case 'DRAIN':
      return 'drain';
    case 'MAINT':
      return 'maint';
    case 'NOLB':
      return 'nolb';
    case 'FULL':
      return 'full';
    case 'no check':
      return 'no-check';
  }
  if (status.startsWith('UP ')) return 'going-down';
  if (status.startsWith('DOWN ')) return 'going-up';
  return 'no-check';
}

/** Whether health checks currently hold the server UP (administrative drain does not make it down; maint hides it). */
export function isHealthUp(status: ServerStatus | string): boolean {
  const k = statusKind(status);
  return k === 'up' || k === 'going-down' || k === 'drain' || k === 'nolb' || k === 'full';
}

/** HAProxy's backend act/bck/weight: servers health-up and not in maintenance, active (tier 0) or backup; their effective weight. */
export function upCounts(servers: readonly ServerStats[]): { act: number; bck: number; weight: number; uweight: number } {
  const c = { act: 0, bck: 0, weight: 0, uweight: 0 };
  for (const s of servers) {
    c.uweight += s.weight.configured;
    if (!isHealthUp(s.status) || s.adminState === 'maint') continue;
    c.weight += s.weight.effective;
    if (s.tier === 0) c.act++;
    else c.bck++;
  }
  return c;
}
