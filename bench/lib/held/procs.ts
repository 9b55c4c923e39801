/**
 * What /proc tells about the proxy's processes (Linux): its worker processes (direct children of the licproxy
 * pid), their memory, their fd limit, and which client connections each one holds. The last is how the bench
 * knows, before it kills a worker, exactly which client connections must be lost: the worker's socket inodes
 * (/proc/<pid>/fd) matched against the kernel's TCP table (/proc/net/tcp).
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
export { rssKb } from '../proc.ts';

/**
 * Direct children of `pid` running the executable `exe` (cluster workers of a licproxy primary run node; tsx's
 * esbuild service is a child too, and is not a worker), ascending.
 */
export function childPids(pid: number, exe: string = process.execPath): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    const p = Number(name);
    if (!Number.isInteger(p) || p <= 0) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${p}/stat`, 'utf8');
    } catch {
      continue;
    }
    // The command name may contain spaces and parentheses: fields are counted after the last ')'.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // A zombie (state Z) is a worker already dead and not yet reaped: not a worker any more.
    if (Number(rest[1]) !== pid || rest[0] === 'Z') continue;
    try {
      if (readlinkSync(`/proc/${p}/exe`) === exe) out.push(p);
    } catch {
      /* gone meanwhile */
    }
  }
  return out.sort((a, b) => a - b);
}

/** utime + stime of one process (every thread) in clock ticks (USER_HZ, 100 on Linux); 0 when gone. */
export function cpuTicks(pid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]);
  } catch {
    return 0;
  }
}

/**
 * Whether a process is still there, zombie included. The main thread of a killed node turns zombie at once while
 * its other threads still tear down the shared fd table, so only "reaped" (gone from /proc) means every fd closed
 * and its parent told.
 */
export function present(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

/** The start time of a process (clock ticks since boot; with the pid, an identity a reused pid cannot fake). */
export function startTime(pid: number): string | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** The soft "Max open files" of a process (`self` for this one); null when unreadable. */
export function fdLimit(pid: number | 'self'): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return m ? (m[1] === 'unlimited' ? Infinity : Number(m[1])) : null;
  } catch {
    return null;
  }
}

/** Open fds of a process, -1 when gone. */
export function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]!);
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

const TCP_STATES = ['?', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING'];

/**
 * For each pid, the ESTABLISHED client connections it holds on one of `frontendPorts`, as
 * `frontendPort:clientPort` (the key the loaders use for the same connection seen from their side). Sockets on a
 * frontend port in another state (CLOSE_WAIT: the client left and the process has not closed its side) are
 * counted in `others` by state name. One read of /proc/net/tcp for all pids.
 */
export function clientConnections(pids: number[], frontendPorts: number[], others?: Map<string, number>): Map<number, Set<string>> {
  const owner = new Map<string, number>();
  for (const pid of pids) for (const inode of socketInodes(pid)) owner.set(inode, pid);
  const result = new Map<number, Set<string>>(pids.map((p) => [p, new Set<string>()]));
  const fronts = new Set(frontendPorts);
  const text = readFileSync('/proc/net/tcp', 'utf8');
  let pos = text.indexOf('\n') + 1;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    const f = text.slice(pos, end).trim().split(/\s+/);
    pos = end + 1;
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
    if (f.length < 10) continue;
    const pid = owner.get(f[9]!);
    if (pid === undefined) continue;
    const localPort = parseInt(f[1]!.split(':')[1]!, 16);
    if (!fronts.has(localPort)) continue;
    const state = parseInt(f[3]!, 16);
    if (state === 10) continue; // the listener itself
    if (state !== 1) {
      const name = TCP_STATES[state] ?? String(state);
      others?.set(name, (others.get(name) ?? 0) + 1);
      continue;
    }
    const remPort = parseInt(f[2]!.split(':')[1]!, 16);
    result.get(pid)!.add(`${localPort}:${remPort}`);
  }
  return result;
}

/** `net.ipv4.ip_local_port_range` as [low, high]. */
export function portRange(): [number, number] {
  const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  return [lo!, hi!];
}
