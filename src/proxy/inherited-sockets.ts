/**
 * Listening sockets this process inherited instead of binding them: systemd socket activation (sd_listen_fds(3):
 * `LISTEN_PID` is this process, `LISTEN_FDS` descriptors from 3, as `systemd/licproxy.socket` passes them), or a
 * cluster primary passing those on to its workers (`LICPROXY_LISTEN_FDS`, the same descriptor numbers).
 *
 * A frontend whose `listen:` address is one of theirs listens on it (frontend.ts) instead of binding. The socket
 * stays open in systemd while licproxy restarts, so the port never closes: a client connecting meanwhile waits in
 * the socket's backlog and is served by the next process, where without it the connect is refused.
 *
 * The descriptors are process-wide, as this table is: read once at start, before any frontend opens.
 */
import { BlockList, isIP } from 'node:net';
import { fstatSync } from 'node:fs';
import { formatHostPort, type HostPort } from '../common/address.ts';
import { printable } from '../common/printable.ts';
import { openDescriptorSocket } from './node-internals.ts';

/** sd_listen_fds(3): passed descriptors start here. */
const FIRST_FD = 3;
/** More is a corrupt environment, not a socket unit (each frontend is one ListenStream= line). */
const MAX_FDS = 256;
/** What the primary sets for its workers (they are not LISTEN_PID, and their descriptors are the same numbers). */
export const WORKER_FDS_ENV = 'LICPROXY_LISTEN_FDS';

export interface InheritedSocket {
  readonly fd: number;
  readonly host: string;
  readonly port: number;
  /** The TCP handle on `fd`, until a frontend takes it (then null: a descriptor is listened on once). */
  handle: object | null;
}

export interface InheritedSummary {
  readonly sockets: readonly InheritedSocket[];
  /** One line each: a descriptor that cannot serve (not a TCP socket, ...), left alone. */
  readonly problems: string[];
}

let table: InheritedSocket[] = [];
let descriptorCount = 0;

/**
 * Reads the passed descriptors from the environment (once, at start) and removes the variables, so that no child
 * process (a worker, a licd of `daemons:`, a check script) takes them for its own.
 */
export function adoptInheritedSockets(env: NodeJS.ProcessEnv = process.env, pid = process.pid): InheritedSummary {
  const fromPrimary = env[WORKER_FDS_ENV];
  const fromSystemd = env.LISTEN_FDS !== undefined && Number(env.LISTEN_PID) === pid ? env.LISTEN_FDS : undefined;
  for (const k of ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES', WORKER_FDS_ENV]) delete env[k];
  const text = fromPrimary ?? fromSystemd;
  table = [];
  descriptorCount = 0;
  if (text === undefined) return { sockets: table, problems: [] };
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > MAX_FDS) return { sockets: table, problems: [`LISTEN_FDS=${printable(text.slice(0, 16))} is not a count of descriptors: ignored`] };
  descriptorCount = n;
  const problems: string[] = [];
  for (let fd = FIRST_FD; fd < FIRST_FD + n; fd++) {
    let isSocket = false;
    try {
      isSocket = fstatSync(fd).isSocket();
    } catch {}
    if (!isSocket) {
      problems.push(`passed descriptor ${fd} is not a socket: ignored`);
      continue;
    }
    const s = openDescriptorSocket(fd);
    if (typeof s === 'string') problems.push(`${s}: ignored`);
    else table.push({ fd, host: s.address, port: s.port, handle: s.handle });
  }
  return { sockets: table, problems };
}

/** How many descriptors were passed (a primary passes them all on to its workers, as 3, 4, ...). */
export function inheritedDescriptorCount(): number {
  return descriptorCount;
}

/** The inherited socket bound to exactly `listen` (an IP address, as `ListenStream=` writes it), or null. */
export function findInheritedSocket(listen: HostPort): InheritedSocket | null {
  const family = isIP(listen.host);
  if (family === 0) return null;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  for (const s of table) {
    if (s.port !== listen.port || isIP(s.host) !== family) continue;
    const one = new BlockList();
    one.addAddress(s.host, type);
    if (one.check(listen.host, type)) return s;
  }
  return null;
}

/** Takes the handle of the inherited socket bound to `listen` for a frontend to listen on; null: bind as usual. */
export function takeInheritedSocket(listen: HostPort): object | null {
  const s = findInheritedSocket(listen);
  if (s === null || s.handle === null) return null;
  const h = s.handle;
  s.handle = null;
  return h;
}

export function describeInherited(s: InheritedSocket): string {
  return `descriptor ${s.fd} (${formatHostPort({ host: s.host, port: s.port })})`;
}
