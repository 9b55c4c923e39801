/**
 * Reads CPU time and memory of a process tree from /proc (Linux). A proxy is measured as the tree under its root
 * pid: HAProxy's threads are inside one pid, NGINX's worker is a child of its master, licproxy is one node pid.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let clkTck = 0;
function ticksPerSecond(): number {
  if (!clkTck) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

interface StatFields {
  ppid: number;
  /** utime + stime in clock ticks, every thread included. */
  ticks: number;
  /** utime alone (user space), clock ticks. */
  userTicks: number;
}

function readStat(pid: number): StatFields | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name may contain spaces and parentheses: fields are counted after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
  return { ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]), userTicks: Number(rest[11]) };
}

/** The root pid and every live descendant. */
export function treePids(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const st = readStat(pid);
    if (!st) continue;
    let list = children.get(st.ppid);
    if (!list) children.set(st.ppid, (list = []));
    list.push(pid);
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length > 0 && out.length < 10_000) {
    const pid = todo.pop()!;
    out.push(pid);
    for (const c of children.get(pid) ?? []) todo.push(c);
  }
  return out;
}

/** CPU seconds (user + system) used so far by `root` and its live descendants. */
export function treeCpuSeconds(root: number): number {
  return treeCpuSplit(root).total;
}

/** CPU seconds used so far by `root` and its live descendants: in all, and in user space alone. */
export function treeCpuSplit(root: number): { total: number; user: number } {
  let ticks = 0;
  let user = 0;
  for (const pid of treePids(root)) {
    const st = readStat(pid);
    ticks += st?.ticks ?? 0;
    user += st?.userTicks ?? 0;
  }
  return { total: ticks / ticksPerSecond(), user: user / ticksPerSecond() };
}

/** VmRSS in KiB of one process, 0 when it is gone. */
export function rssKb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** VmRSS in KiB summed over `root` and its live descendants. */
export function treeRssKb(root: number): number {
  let kb = 0;
  for (const pid of treePids(root)) kb += rssKb(pid);
  return kb;
}
