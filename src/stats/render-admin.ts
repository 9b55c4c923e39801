/**
 * The /stats page's admin part (SPEC 10, HAProxy's `stats admin`), only where `stats.admin` is set: a login form
 * (the admin token, exchanged for a session cookie) or, once logged in, per pool a row of ready / drain / maint
 * buttons per server. Plain HTML forms, no JavaScript; each carries the session's CSRF token.
 */
import { escapeHtml as e } from './format.ts';
import type { PoolStats } from './snapshot.ts';

/** What the page knows of the viewer: `csrf` when logged in. */
export type AdminView = { loggedIn: false } | { loggedIn: true; csrf: string };

export const ADMIN_STYLE = `
form.adm{display:inline;margin:0}form.adm button{font-size:11px;margin:0 1px;padding:0 5px}
form.adm button[disabled]{font-weight:bold}
div.admin-bar{margin:4px 0 6px;padding:4px 6px;background:#fff4d8;border:1px solid #d8b860}
div.admin-bar input{font-size:12px;width:260px}
table.admin td{padding:2px 4px}
`;

export function adminBar(view: AdminView): string {
  if (!view.loggedIn) {
    return '<div class="admin-bar"><form method="post" action="/stats/login" class="adm">Admin: ' +
      '<input type="password" name="token" autocomplete="current-password" placeholder="admin token (stats.admin.token_file)"> ' +
      '<button type="submit">log in</button></form></div>\n';
  }
  return `<div class="admin-bar">Admin: logged in &middot; <form method="post" action="/stats/logout" class="adm">` +
    `<input type="hidden" name="csrf" value="${e(view.csrf)}"><button type="submit">log out</button></form></div>\n`;
}

/** The pool's servers with their admin state and a button per state (the current one disabled). */
export function adminPoolForms(pool: PoolStats, view: AdminView): string {
  if (!view.loggedIn || pool.servers.length === 0) return '';
  const rows = pool.servers.map((s) => {
    const buttons = (['ready', 'drain', 'maint'] as const)
      .map((st) => `<button type="submit" name="state" value="${st}"${s.adminState === st ? ' disabled' : ''}>${st}</button>`)
      .join('');
    return `<tr><td class="name">${e(s.name)}</td><td>${e(s.adminState)}</td><td>` +
      `<form method="post" action="/stats/admin" class="adm"><input type="hidden" name="csrf" value="${e(view.csrf)}">` +
      `<input type="hidden" name="pool" value="${e(pool.name)}"><input type="hidden" name="server" value="${e(s.name)}">${buttons}</form></td></tr>`;
  });
  return `<table class="admin" data-pool="${e(pool.name)}"><thead><tr><th>Server</th><th>Admin state</th><th>Set</th></tr></thead><tbody>${rows.join('')}</tbody></table>\n`;
}
