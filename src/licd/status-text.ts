/**
 * Renders a status snapshot as FlexNet `lmutil lmstat -a` text (SPEC 4.2), close enough that parsers written for
 * real lmstat read it: two spaces after `:` and `;`, "1 license" / "2 licenses", expiry as `31-dec-2027`.
 */
import type { RedundancyStatus } from './redundancy.ts';
import type { LicdStatus, LicdUserStatus } from './status.ts';

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

function licenses(n: number): string {
  return n === 1 ? '1 license' : `${n} licenses`;
}

/** `2027-12-31` -> `31-dec-2027`, as lmstat writes expiry dates. */
export function lmstatDate(ymd: string): string {
  const [y, m, d] = ymd.split('-');
  return `${Number(d)}-${MONTHS[Number(m) - 1]}-${y}`;
}

/** `Sun 11/22 14:03` in local time: lmstat's start stamp (no zero padding of month, day or hour). */
export function lmstatStart(ms: number): string {
  const t = new Date(ms);
  const min = t.getMinutes();
  return `${DAYS[t.getDay()]} ${t.getMonth() + 1}/${t.getDate()} ${t.getHours()}:${min < 10 ? '0' : ''}${min}`;
}

function userLine(s: LicdStatus, u: LicdUserStatus): string {
  const who = `    ${u.user} ${u.host} ${u.display} (v${u.version})`;
  if (u.queued) return `${who} (${s.server}/${s.ports.license}) queued for ${licenses(u.count)}`;
  return `${who} (${s.server}/${u.port} ${u.handle}), start ${lmstatStart(u.start)}, ${licenses(u.count)}`;
}

/**
 * `Redundancy: <mode>, <state>`, then this member's role and one line per configured peer (the redundancy view of
 * a balancer reads them): `Redundancy role: following, master a` and `Redundancy peer: b connected serving` /
 * `Redundancy peer: c missing`. The serving member adds `synced` / `unsynced` to each connected peer.
 */
export function redundancyLines(r: RedundancyStatus): string[] {
  const lines = [`Redundancy: ${r.mode}, ${r.state}`, `Redundancy role: ${r.role}, master ${r.master ?? 'none'}`];
  for (const p of r.peers) {
    const who = p.name ?? p.address;
    if (!p.connected) lines.push(`Redundancy peer: ${who} missing`);
    else lines.push(`Redundancy peer: ${who} connected ${p.role ?? 'unknown'}${p.synced === undefined ? '' : p.synced ? ' synced' : ' unsynced'}`);
  }
  return lines;
}

/** The whole answer to `STATUS`, ending in `END\n`. */
export function renderStatusText(s: LicdStatus): string {
  const lines = [
    `License server status: ${s.ports.license}@${s.server}`,
    `${s.server}: license server ${s.up ? 'UP' : 'DOWN'}${s.master ? ' (MASTER)' : ''} v${s.version}`,
    ...(s.redundancy ? redundancyLines(s.redundancy) : []),
    `Vendor daemon status (on ${s.server}):`,
    `  licd: ${s.up ? 'UP' : 'DOWN'} v${s.version}`,
  ];
  for (const f of s.features) {
    lines.push(`Users of ${f.name}:  (Total of ${licenses(f.issued)} issued;  Total of ${licenses(f.inUse)} in use)`);
    // Printed for every feature, in use or not, so a status check can see the expiry of an idle feature too.
    lines.push(`  "${f.name}" v${f.version}, vendor: licd${f.expires ? `, expiry: ${lmstatDate(f.expires)}` : ''}`);
    lines.push('  floating license');
    for (const u of f.users) lines.push(userLine(s, u));
  }
  lines.push('END', '');
  return lines.join('\n');
}
