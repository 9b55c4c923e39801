/**
 * The live sessions list (GET /api/sessions and the /stats section, SPEC 10): every open client connection of
 * this process, read from the runtime's set of live connections (the one shutdown walks: an O(1) add at accept and
 * delete at close that exists anyway), so tracking costs the forwarding path nothing. Everything is read here, at
 * request time: byte counts from the sockets' own counters, licd fields from what the watched start kept
 * (session-seen.ts). The output is bounded (`limit`), the count of every match is not.
 */
import type { Connection } from './connection.ts';

/** One open client connection, as plain data (the stats side never sees a live Connection). */
export interface SessionInfo {
  frontend: string;
  pool: string;
  /** The server it is connected to (or last tried, while connecting); null before any. */
  server: string | null;
  /** `ip:port` of the client (`[ip]:port` for IPv6). */
  client: string;
  /** Date.now() at accept. */
  since: number;
  /** reading, asking, placing, queued, connecting, open. */
  state: string;
  /** Client -> server bytes so far. */
  bytesIn: number;
  /** Server -> client bytes so far. */
  bytesOut: number;
  /** The worker process that holds it (`global.workers` > 1). */
  worker?: number;
  /** `protocol: licd`: the HELLO user, the handle's public id, the features asked for (what the proxy saw). */
  user?: string | null;
  handle?: string | null;
  features?: string[];
}

export interface SessionQuery {
  pool?: string;
  server?: string;
  /** A client IP (every port) or `ip:port`. */
  client?: string;
  /** Most sessions returned (oldest first); the total counts them all. */
  limit: number;
}

export interface SessionList {
  /** Matching sessions, whether returned or not. */
  total: number;
  /** The oldest `limit` of them, oldest first. */
  sessions: SessionInfo[];
  /** Workers that did not answer in time (their sessions are missing); absent without workers. */
  workersMissing?: number;
}

export const DEFAULT_SESSION_LIMIT = 1000;
export const MAX_SESSION_LIMIT = 10_000;

/** Sessions of `live` (a Set keeps accept order, so the first found are the oldest) that match `q`. */
export function listSessions(live: Iterable<Connection>, q: SessionQuery): SessionList {
  const out: SessionInfo[] = [];
  let total = 0;
  const byClient = q.client !== undefined && q.client !== '';
  const wantPort = byClient && hasPort(q.client!);
  for (const c of live) {
    if (q.pool !== undefined && q.pool !== '' && c.pool.name !== q.pool) continue;
    if (q.server !== undefined && q.server !== '' && c.server?.name !== q.server) continue;
    const state = c.state;
    if (state === 'done') continue;
    // The peer address is read here on first use (a getpeername), never at accept for a pool that needs none.
    const ip = c.clientIp;
    const client = formatClient(ip, c.clientPort);
    if (byClient && (wantPort ? client !== q.client : ip !== q.client)) continue;
    total++;
    if (out.length >= q.limit) continue;
    const s: SessionInfo = {
      frontend: c.frontendName,
      pool: c.pool.name,
      server: c.server?.name ?? null,
      client,
      since: c.since,
      state,
      bytesIn: c.bytesIn,
      bytesOut: c.bytesOut,
    };
    const seen = c.licd;
    if (seen !== null) {
      s.user = seen.user;
      s.handle = seen.handle;
      s.features = [...seen.features];
    }
    out.push(s);
  }
  return { total, sessions: out };
}

/** The lists of several workers as one: totals added, the oldest `limit` kept. */
export function mergeSessionLists(lists: readonly SessionList[], limit: number, workersMissing = 0): SessionList {
  let total = 0;
  const all: SessionInfo[] = [];
  for (const l of lists) {
    total += l.total;
    for (const s of l.sessions) all.push(s);
  }
  all.sort((a, b) => a.since - b.since);
  if (all.length > limit) all.length = limit;
  return { total, sessions: all, workersMissing };
}

function formatClient(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

function hasPort(client: string): boolean {
  return client.startsWith('[') || /^[^:]*:\d+$/.test(client);
}
