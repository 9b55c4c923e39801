/**
 * Live sessions (SPEC 10): the JSON of GET /api/sessions and the section of /stats that lists the oldest open
 * connections with a link to the API for the rest. User names, features and handles are client-controlled text:
 * every value goes through escapeHtml here (and JSON.stringify escapes for the API).
 */
import type { SessionList, SessionQuery } from '../proxy/session-list.ts';
import { escapeHtml as e, formatDuration, formatTime } from './format.ts';

/** Sessions listed on /stats; the rest are in /api/sessions. */
export const HTML_SESSIONS = 100;

export function renderSessionsJson(list: SessionList, query: SessionQuery, at: number): string {
  return JSON.stringify({
    at,
    total: list.total,
    returned: list.sessions.length,
    limit: query.limit,
    ...(list.workersMissing ? { workersMissing: list.workersMissing } : {}),
    sessions: list.sessions,
  });
}

export function sessionsSection(list: SessionList | undefined, now: number): string {
  if (list === undefined) return '';
  const licd = list.sessions.some((s) => s.features !== undefined);
  const workers = list.sessions.some((s) => s.worker !== undefined);
  const rows = list.sessions.map((s) =>
    `<tr><td>${e(s.frontend)}</td><td>${e(s.pool)}</td><td>${e(s.server ?? '-')}</td><td>${e(s.client)}</td>` +
    `<td title="${e(formatTime(s.since))}">${formatDuration(now - s.since)}</td><td>${e(s.state)}</td>` +
    `<td class="n">${e(s.bytesIn)}</td><td class="n">${e(s.bytesOut)}</td>` +
    (workers ? `<td class="n">${s.worker === undefined ? '' : e(s.worker)}</td>` : '') +
    (licd ? `<td>${e(s.user ?? '')}</td><td>${e(s.handle ?? '')}</td><td>${e((s.features ?? []).join(' '))}</td>` : '') +
    '</tr>\n');
  const cols = 8 + (workers ? 1 : 0) + (licd ? 3 : 0);
  const shown = list.sessions.length < list.total ? `oldest ${list.sessions.length} of ${list.total}` : `${list.total}`;
  const missing = list.workersMissing ? ` <span class="exp">${e(list.workersMissing)} worker(s) did not answer</span>` : '';
  return `<h2 id="sessions">Live sessions <small class="muted">(${shown}, oldest first; all in <a href="/api/sessions">/api/sessions</a>)</small>${missing}</h2>\n` +
    '<table class="sessions"><thead><tr><th>Frontend</th><th>Pool</th><th>Server</th><th>Client</th><th>Since</th><th>State</th>' +
    '<th>Bytes in</th><th>Bytes out</th>' + (workers ? '<th>Worker</th>' : '') +
    (licd ? '<th>User</th><th>Handle</th><th>Features</th>' : '') + '</tr></thead><tbody>\n' +
    (rows.length ? rows.join('') : `<tr><td colspan="${cols}" class="muted">no open connection</td></tr>\n`) +
    '</tbody></table>\n';
}
