/**
 * The redundancy section of /stats (SPEC 10): one table per licd set, one row per member with its role, whether it
 * is connected to the set and in sync with the master, and since when a missing member is missing (the four
 * states BarTender's redundancy page shows as icons, written out). Names come from servers: escaped.
 */
import { escapeHtml as e, formatDuration, formatTime } from './format.ts';
import type { RedundancyMember, RedundancySet } from './redundancy-view.ts';

export function redundancySection(sets: readonly RedundancySet[] | undefined, now: number): string {
  if (sets === undefined || sets.length === 0) return '';
  return '<h2 id="redundancy">Redundancy</h2>\n' + sets.map((s) => setTable(s, now)).join('');
}

function setTable(s: RedundancySet, now: number): string {
  const badge = s.state === 'complete' ? 'b-up' : s.state === 'degraded' ? 'b-master' : 'b-down';
  const missing = s.missing.length > 0 ? ` &middot; missing: <b>${e(s.missing.join(', '))}</b>` : '';
  return `<div class="info">pool <b>${e(s.pool)}</b>${s.mode ? ` (${e(s.mode)})` : ''} <span class="badge ${badge}">${e(s.state.toUpperCase())}</span>` +
    ` &middot; master <b>${e(s.master ?? 'none')}</b>${missing}</div>\n` +
    '<table class="redundancy"><thead><tr><th>Member</th><th>Server</th><th>Role</th><th>Connected</th><th>Synchronized</th>' +
    '<th>Its state</th><th>Missing since</th></tr></thead><tbody>\n' +
    s.members.map((m) => memberRow(m, now)).join('') + '</tbody></table>\n';
}

function memberRow(m: RedundancyMember, now: number): string {
  const cls = !m.connected ? 'down' : m.synced === false ? 'going-down' : 'up';
  const synced = m.synced === null ? '?' : m.synced ? 'yes' : 'no';
  const since = m.missingSince === null ? '' : `${e(formatTime(m.missingSince))} (${formatDuration(now - m.missingSince)} ago)`;
  return `<tr class="${cls}"><td class="name">${e(m.name)}</td><td>${e(m.server ?? '-')}</td>` +
    `<td>${m.role === 'master' ? '<span class="badge b-master">MASTER</span>' : e(m.role)}</td>` +
    `<td class="st">${m.connected ? 'yes' : '<b>MISSING</b>'}</td><td class="st">${synced}</td>` +
    `<td>${e(m.state ?? '-')}</td><td>${since}</td></tr>\n`;
}
