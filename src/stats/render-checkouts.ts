/**
 * The checkout table under a licd pool on /stats (SPEC 8.2): what the first CHECKOUT of each connection got, per
 * server and feature. `saved` are grants that came after another server denied (retry_denied); `waited` are
 * connections that waited in the pool queue for a server (no master known, all full).
 */
import { escapeHtml as e } from './format.ts';
import type { PoolStats } from './snapshot.ts';

export function checkoutTable(pool: PoolStats): string {
  const rows = pool.checkouts;
  if (rows === undefined) return '';
  if (rows.length === 0) return '<div class="info">licd checkouts: none yet</div>\n';
  const body = rows
    .map((r) => `<tr><td>${e(r.server)}</td><td>${e(r.feature)}</td><td class="n">${e(r.granted)}</td><td class="n">${e(r.denied)}</td><td class="n">${e(r.retriedSaved)}</td><td class="n">${e(r.queueWaits)}</td></tr>`)
    .join('\n');
  return `<table class="checkouts"><thead><tr><th>Server</th><th>Feature</th><th>Granted</th><th>Denied</th><th>Saved by retry</th><th>Waited</th></tr></thead><tbody>\n${body}\n</tbody></table>\n`;
}
