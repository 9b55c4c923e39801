/**
 * The redundancy view (SPEC 10, BarTender's redundancy page, AVEVA's pair status): per licd set (a pool in
 * `mode: master`, or whose members report a pair / triad), each member's role, whether it is connected to the set
 * and in sync with the serving member, which member is missing and since when. Built from the last check of each
 * member (licd STATUS: `Redundancy role:` / `Redundancy peer:` lines, lmstat-check.ts), so it costs nothing
 * beyond the checks that run anyway. A member counts as missing when it does not answer the proxy's check and no
 * member that answers sees it, or when every member that answers reports it missing (a member cut off from its
 * peers, though the proxy still reaches it).
 */
import type { PoolSnapshot } from '../proxy/pool.ts';
import type { ServerSnapshot } from '../proxy/server.ts';
import type { RedundancyDetail } from '../health/types.ts';

export type MemberRole = 'master' | 'follower' | 'candidate' | 'recovering' | 'waiting' | 'unknown';

export interface RedundancyMember {
  /** The member's licd name (as its STATUS names itself), else the pool server's name. */
  name: string;
  /** The pool server it is; null for a member only its peers know (not a server of the pool). */
  server: string | null;
  role: MemberRole;
  /** It answered the proxy's last check with its redundancy status. */
  answering: boolean;
  /** Part of the set: answering and seen by a peer (or alone to answer), or seen connected by a peer. */
  connected: boolean;
  /** The serving member reports it holds every replicated change; true for the master; null: nobody can tell. */
  synced: boolean | null;
  /** Its own pair / triad state (`paired and synced`, `peer not available`, ...). */
  state: string | null;
  /** When it went missing (Date.now()); null while connected. */
  missingSince: number | null;
}

export interface RedundancySet {
  pool: string;
  /** `triad` or `backup` as the members report it; null when none answered. */
  mode: string | null;
  master: string | null;
  /** complete: every member connected and synced; degraded: one missing or not synced; no master. */
  state: 'complete' | 'degraded' | 'no master';
  missing: string[];
  members: RedundancyMember[];
}

const ROLES: Record<string, MemberRole> = { serving: 'master', following: 'follower', candidate: 'candidate', recovering: 'recovering', waiting: 'waiting' };

/**
 * Remembers when each member was first seen missing, for members whose server did not go DOWN (a cut peer link):
 * the stats source keeps one for its lifetime. Entries go when the member is back; a set has a handful of members.
 */
export class MissingSince {
  readonly #since = new Map<string, number>();

  mark(pool: string, member: string, missing: boolean, now: number): number | null {
    const key = `${pool}\0${member}`;
    if (!missing) {
      this.#since.delete(key);
      return null;
    }
    let at = this.#since.get(key);
    if (at === undefined) this.#since.set(key, (at = now));
    return at;
  }

  /** Drops members of pools or names no longer shown (reloads). */
  keepOnly(keys: ReadonlySet<string>): void {
    for (const k of this.#since.keys()) if (!keys.has(k)) this.#since.delete(k);
  }
}

export function redundancySets(pools: readonly PoolSnapshot[], tracker: MissingSince, now: number): RedundancySet[] {
  const out: RedundancySet[] = [];
  const shown = new Set<string>();
  for (const p of pools) {
    const isSet = p.mode === 'master' || p.servers.some((s) => s.lastCheck?.redundancy !== undefined || s.lastCheck?.redundancyDetail !== undefined);
    if (!isSet) continue;
    const set = setOf(p, tracker, now);
    for (const m of set.members) shown.add(`${p.name}\0${m.name}`);
    out.push(set);
  }
  tracker.keepOnly(shown);
  return out;
}

interface Known {
  name: string;
  server: ServerSnapshot | null;
  detail: RedundancyDetail | null;
}

function setOf(p: PoolSnapshot, tracker: MissingSince, now: number): RedundancySet {
  const members: Known[] = p.servers.map((s) => {
    const detail = s.lastCheck?.redundancyDetail ?? null;
    return { name: detail?.self ?? s.name, server: s, detail };
  });
  const answering = members.filter((m) => m.detail !== null);
  // Members the answering ones name as peers but the pool does not list. A peer a member never linked with is
  // shown by its peer address (a licd name has no colon): not matchable to anything, and left out.
  for (const a of answering) {
    for (const peer of a.detail!.peers) {
      if (!peer.name.includes(':') && !members.some((m) => m.name === peer.name || m.server?.name === peer.name)) members.push({ name: peer.name, server: null, detail: null });
    }
  }
  const peerViews = (m: Known) => {
    const views: { connected: boolean; role?: string; synced?: boolean; fromRole: string }[] = [];
    for (const a of answering) {
      if (a === m) continue;
      const v = a.detail!.peers.find((x) => x.name === m.name || (m.server !== null && x.name === m.server.name));
      if (v !== undefined) views.push({ ...v, fromRole: a.detail!.role });
    }
    return views;
  };
  const masterOf = answering.find((m) => m.detail!.role === 'serving');
  const result: RedundancyMember[] = members.map((m) => {
    const views = peerViews(m);
    const seen = views.some((v) => v.connected);
    const unseen = views.length > 0 && !seen;
    const answers = m.detail !== null;
    const connected = answers ? !unseen : seen;
    // Its own word for its role; else what a peer linked to it says; else nobody knows.
    const licdRole = answers ? m.detail!.role : views.find((v) => v.connected)?.role;
    const role: MemberRole = (licdRole !== undefined ? ROLES[licdRole] : undefined) ?? 'unknown';
    const synced = syncedOf(m === masterOf, views.find((v) => v.fromRole === 'serving'), masterOf !== undefined, connected);
    const s = m.server;
    // A member whose server went DOWN went missing then (after `fall` checks); otherwise since first seen missing.
    const tracked = tracker.mark(p.name, m.name, !connected, now);
    const missingSince = connected ? null : s !== null && s.health === 'down' && s.counters.lastChange > 0 ? Math.min(s.counters.lastChange, tracked!) : tracked;
    return {
      name: m.name,
      server: s?.name ?? null,
      role,
      answering: answers,
      connected,
      synced,
      state: s?.lastCheck?.redundancy ?? null,
      missingSince,
    };
  });
  const missing = result.filter((m) => !m.connected).map((m) => m.name);
  const master = result.find((m) => m.role === 'master' && m.connected)?.name ?? null;
  const mode = answering.map((m) => m.detail!.mode).find((x) => x !== null) ?? null;
  return {
    pool: p.name,
    mode,
    master,
    state: master === null ? 'no master' : missing.length > 0 || result.some((m) => m.synced === false) ? 'degraded' : 'complete',
    missing,
    members: result,
  };
}

/**
 * The master is the reference (synced); a member the serving one reports on is what it reports (a disconnected one
 * is not); a member missing while a master serves has missed its changes; otherwise nobody can tell.
 */
function syncedOf(isMaster: boolean, fromMaster: { connected: boolean; synced?: boolean } | undefined, hasMaster: boolean, connected: boolean): boolean | null {
  if (isMaster) return true;
  if (fromMaster?.synced !== undefined) return fromMaster.synced && fromMaster.connected;
  if (fromMaster !== undefined && !fromMaster.connected) return false;
  return hasMaster && !connected ? false : null;
}
