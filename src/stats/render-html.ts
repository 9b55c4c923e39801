/**
 * `/stats`: the HTML page, laid out like HAProxy's stats page (one table per pool, grouped column headers, one row
 * per server and a total row, rows coloured by status). Self-contained: inline CSS, no JavaScript, no external asset,
 * refreshed by `<meta http-equiv="refresh">`. Every string that came from the configuration or from a server goes
 * through escapeHtml (server names, hosts, check reasons, feature names, event reasons, ...).
 */
import { checkoutTable } from './render-checkouts.ts';
import { ADMIN_STYLE, adminBar, adminPoolForms, type AdminView } from './render-admin.ts';
import { escapeHtml as e, formatDuration, formatMs, formatTime } from './format.ts';
import type { FeatureStats, FrontendStats, PoolStats, ReloadStats, ServerStats, StatsEvent, StatsSnapshot } from './snapshot.ts';
import { statusKind, upCounts } from './status.ts';

export interface HtmlOptions {
  /** Auto-refresh period in ms (`stats.refresh`); 0 = no refresh. */
  refreshMs: number;
  /** How many of the latest events to list. */
  events?: number;
  /** `stats.history` is set: link to /stats/usage. */
  usageLink?: boolean;
  /** `stats.admin` is set: the login form, or the admin buttons of a logged-in viewer. */
  admin?: AdminView;
}

const STYLE = `
body{font-family:Arial,Helvetica,sans-serif;font-size:12px;margin:8px 12px;color:#000;background:#fff}
h1{font-size:18px;margin:0 0 2px;color:#fff;background:#20377a;padding:6px 8px}
h1 small{font-size:12px;font-weight:normal;color:#dde}
h2{font-size:14px;margin:14px 0 2px;padding:3px 6px;background:#e8e8f0;border-left:4px solid #20377a}
p.reload{margin:4px 0}p.reload b.ok{color:#060}p.reload b.bad{color:#b00}
h2 .badge{font-size:11px;margin-left:6px}
.info{margin:2px 0 4px;color:#333}
.info b{color:#000}
table{border-collapse:collapse;margin:0 0 6px;font-size:11px}
th,td{border:1px solid #999;padding:1px 3px;white-space:nowrap}
td.chk{white-space:normal;min-width:110px;max-width:190px}
th{background:#20377a;color:#fff;font-weight:normal}
thead tr.grp th{background:#3c55a3;font-weight:bold}
td.n{text-align:right;font-variant-numeric:tabular-nums}
td.name{font-weight:bold}
td.name small{font-weight:normal;color:#333}
tr.total td{background:#c8d0e8;font-weight:bold;border-top:2px solid #20377a}
tr.up td{background:#c0ffc0}
tr.up.bck td{background:#b0d0ff}
tr.down td{background:#ff9090}
tr.going-down td{background:#ffffa0}
tr.going-up td{background:#ffd020}
tr.drain td,tr.nolb td{background:#8cc8ff}
tr.maint td{background:#c8c8c8;color:#333}
tr.full td{background:#ffc080}
tr.no-check td{background:#e8e8e8}
td.st{font-weight:bold;text-align:center}
.badge{display:inline-block;padding:0 5px;border-radius:3px;font-weight:bold;font-size:10px;border:1px solid #666}
.b-up{background:#c0ffc0}.b-down{background:#ff9090}.b-master{background:#ffe680}.b-stop{background:#c8c8c8}
.b-tier{background:#fff}
.feat{display:flex;align-items:center;gap:4px;margin:1px 0}
.feat .fn{min-width:56px}
.bar{display:inline-block;width:48px;height:9px;border:1px solid #555;background:#fff;position:relative}
.bar .fill{display:block;height:100%;background:#3c9a3c}
.bar .fill.hi{background:#e0a020}.bar .fill.full{background:#d03030}
.exp{color:#b00000;font-weight:bold}
.legend{margin:4px 0 8px;font-size:11px}
.legend span{display:inline-block;padding:1px 6px;margin-right:4px;border:1px solid #999}
table.ev td.r{white-space:normal;max-width:700px}
.muted{color:#666}
`;

export function renderHtml(snapshot: StatsSnapshot, events: readonly StatsEvent[], opts: HtmlOptions): string {
  const refreshS = Math.max(0, Math.round(opts.refreshMs / 1000));
  const p = snapshot.process;
  const out: string[] = [];
  out.push(
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
    refreshS > 0 ? `<meta http-equiv="refresh" content="${refreshS}">` : '',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<title>licproxy stats</title><style>', STYLE, opts.admin ? ADMIN_STYLE : '', '</style></head><body>\n',
    `<h1>licproxy <small>version ${e(p.version)} &middot; pid ${e(p.pid)} &middot; up ${formatDuration(p.uptimeMs)}`,
    p.workers ? ` &middot; ${p.workers.length} workers (pids ${e(p.workers.map((w) => w.pid || '-').join(' '))})` : '',
    ` &middot; ${e(formatTime(snapshot.at))}${refreshS > 0 ? ` &middot; refresh ${refreshS}s` : ''}</small></h1>\n`,
    reloadLine(p.reloads),
    opts.admin ? adminBar(opts.admin) : '',
    opts.usageLink ? '<p class="links"><a href="/stats/usage">Usage history</a> (peak and mean seats per hour, per feature)</p>\n' : '',
    '<div class="legend">',
    '<span style="background:#c0ffc0">UP</span><span style="background:#b0d0ff">UP (backup tier)</span>',
    '<span style="background:#ffffa0">UP, going down</span><span style="background:#ffd020">DOWN, going up</span>',
    '<span style="background:#ff9090">DOWN</span><span style="background:#8cc8ff">DRAIN / NOLB</span>',
    '<span style="background:#c8c8c8">MAINT</span><span style="background:#e8e8e8">no check</span></div>\n',
  );
  out.push(frontendsTable(snapshot.frontends));
  for (const pool of snapshot.pools) out.push(poolSection(pool, snapshot.at), opts.admin ? adminPoolForms(pool, opts.admin) : '');
  out.push(eventsTable(events, opts.events ?? 20));
  out.push('</body></html>\n');
  return out.join('');
}

/** The last reload, so an operator sees at once that the file on disk is not what runs. */
function reloadLine(r: ReloadStats | undefined): string {
  if (r === undefined || r.last === null) return '';
  const l = r.last;
  const what = l.ok ? '<b class="ok">ok</b>' : '<b class="bad">failed</b>';
  const why = l.ok || l.error === null ? '' : `: ${e(l.error.length > MAX_RELOAD_ERROR ? `${l.error.slice(0, MAX_RELOAD_ERROR)}...` : l.error)}`;
  return `<p class="reload">last reload: ${what} at ${e(formatTime(l.at))}${why} &middot; ${e(r.ok)} ok, ${e(r.failed)} failed since start</p>\n`;
}

/** Characters of a reload error shown on the page (the whole list is in the log). */
const MAX_RELOAD_ERROR = 300;

function frontendsTable(frontends: readonly FrontendStats[]): string {
  const rows = frontends.map((f) => {
    const open = f.status === 'OPEN';
    return `<tr><td class="name">${e(f.name)}</td><td>${e(f.listen)}</td><td>${e(f.pool)}</td><td>${e(f.port)}</td>` +
      `<td class="st"><span class="badge ${open ? 'b-up' : 'b-stop'}">${e(f.status)}</span></td>` +
      `${num(f.scur)}${num(f.smax)}${num(f.slim)}${num(f.stot)}${num(f.denied)}${num(f.bytesIn)}${num(f.bytesOut)}</tr>\n`;
  });
  return '<h2>Frontends</h2>\n<table class="fe"><thead>' +
    '<tr class="grp"><th rowspan="2">Frontend</th><th rowspan="2">Listen</th><th rowspan="2">Pool</th><th rowspan="2">Port</th>' +
    '<th rowspan="2">Status</th><th colspan="4">Sessions</th><th rowspan="2">Denied</th><th colspan="2">Bytes</th></tr>' +
    '<tr><th>Cur</th><th>Max</th><th>Limit</th><th>Total</th><th>In</th><th>Out</th></tr></thead><tbody>\n' +
    (rows.length ? rows.join('') : '<tr><td colspan="12" class="muted">no frontend</td></tr>\n') +
    '</tbody></table>\n';
}

const POOL_HEAD =
  '<thead><tr class="grp"><th rowspan="2">Server</th><th colspan="2">Queue</th><th colspan="4">Sessions</th>' +
  '<th colspan="2">Bytes</th><th>Errors</th><th colspan="2">Warnings</th><th colspan="10">Server</th>' +
  '<th rowspan="2">Bindings</th><th rowspan="2">Licenses<br>in use / issued</th></tr>' +
  '<tr><th>Cur</th><th>Max</th><th>Cur</th><th>Max</th><th>Limit</th><th>Total</th><th>In</th><th>Out</th>' +
  '<th>Conn</th><th>Retr</th><th>Redis</th><th>Status</th><th>Last check</th><th>Wght</th><th>Tier</th>' +
  '<th>Act</th><th>Bck</th><th>Chk</th><th>Dwn</th><th>Last chg</th><th>Dwntme</th></tr></thead>\n';

function poolSection(pool: PoolStats, now: number): string {
  const a = pool.affinity;
  const info: string[] = [
    `mode <b>${e(pool.mode)}</b>`,
    `balance <b>${e(pool.balance)}</b>`,
    `<b>${e(pool.usable)}</b> usable server${pool.usable === 1 ? '' : 's'}`,
    `active tier <b>${pool.activeTier === null ? '-' : e(pool.activeTier)}</b>`,
    `failovers <b>${e(pool.failovers)}</b>${pool.lastFailoverAt === null ? '' : ` (last ${formatDuration(now - pool.lastFailoverAt)} ago)`}`,
    a.by === 'none'
      ? 'affinity <b>none</b>'
      : `affinity by <b>${e(a.by)}</b>: <b>${e(a.bindings)}</b> bindings, ${e(a.hits)} hits / ${e(a.misses)} misses / ${e(a.evictions)} evictions`,
  ];
  if (pool.redundancy !== undefined) info.push(`redundancy: <b>${e(pool.redundancy)}</b>`);
  if (pool.feature !== undefined) {
    info.push(
      pool.featureServed === false
        ? `feature <b>${e(pool.feature)}</b> <span class="badge b-down">SERVED BY NO SERVER</span>`
        : `feature <b>${e(pool.feature)}</b>`,
    );
  }
  const hold = pool.failoverHold;
  if (hold !== undefined) info.push(`waiting for tier <b>${e(hold.tier)}</b> (failover delay, ${formatDuration(Math.max(0, hold.until - now))} left)`);
  const st = pool.failbackStepping;
  if (st !== undefined) info.push(`failback to tier <b>${e(st.to)}</b>: step ${e(st.step)}/${e(st.steps)}, <b>${e(Math.round(st.share * 100))}%</b> of new clients`);
  const badge = pool.available ? '<span class="badge b-up">AVAILABLE</span>' : '<span class="badge b-down">UNAVAILABLE</span>';
  const rows = pool.servers.map((s) => serverRow(s, pool, now)).join('');
  return `<h2 id="pool-${e(pool.name)}">Pool ${e(pool.name)} ${badge}</h2>\n<div class="info">${info.join(' &middot; ')}</div>\n` +
    `<table class="pool">${POOL_HEAD}<tbody>\n${rows}${totalRow(pool, now)}</tbody></table>\n` + checkoutTable(pool);
}

function serverRow(s: ServerStats, pool: PoolStats, now: number): string {
  const kind = statusKind(s.status);
  const backup = s.tier > 0;
  const ports = Object.values(s.ports).map((p) => e(p)).join(',');
  // A standalone server is its own master: the badge only means something in a redundant set or a master pool.
  const master = s.master && (pool.mode === 'master' || pool.redundancy !== undefined) ? ' <span class="badge b-master">MASTER</span>' : '';
  const tierMark = pool.activeTier === s.tier ? ' title="tier taking new clients"' : '';
  return `<tr class="${kind}${backup ? ' bck' : ''}">` +
    `<td class="name">${e(s.name)}${master} <small>${e(s.host)}:${ports}</small></td>` +
    // Clients wait in the pool's queue (the total row), not per server.
    `<td></td><td></td>${num(s.scur)}${num(s.smax)}${num(s.slim)}${num(s.stot)}` +
    `${num(s.bytesIn)}${num(s.bytesOut)}${num(s.connectErrors)}${num(s.retries)}${num(s.redispatches)}` +
    `<td class="st">${e(s.status)}</td>` +
    `<td class="chk"${s.lastCheck && !s.lastCheck.ok ? ` title="${e(s.lastCheck.reason)}"` : ''}>${lastCheck(s, now)}</td>` +
    `<td class="n">${e(s.weight.effective)}/${e(s.weight.configured)}</td>` +
    `<td class="n"${tierMark}>${pool.activeTier === s.tier ? `<b>${e(s.tier)}</b>` : e(s.tier)}</td>` +
    `<td class="st">${backup ? '-' : 'Y'}</td><td class="st">${backup ? 'Y' : '-'}</td>` +
    `${num(s.checkFailures)}${num(s.downTransitions)}` +
    `<td class="n">${s.lastChangeAt === null ? '-' : formatDuration(now - s.lastChangeAt)}</td>` +
    `<td class="n">${formatDuration(s.downtimeMs)}</td>` +
    `${num(s.bindings)}<td>${features(s.features)}</td></tr>\n`;
}

function lastCheck(s: ServerStats, now: number): string {
  const c = s.lastCheck;
  if (!c) return '<span class="muted">none yet</span>';
  const what = c.ok ? 'ok' : e(c.reason);
  return `${what} in ${formatMs(c.durationMs)}, ${formatDuration(now - c.at)} ago`;
}

function features(list: readonly FeatureStats[]): string {
  if (list.length === 0) return '<span class="muted">-</span>';
  return list.map((f) => {
    const pct = f.issued > 0 ? Math.min(100, Math.round((f.inUse / f.issued) * 100)) : 0;
    const cls = pct >= 100 ? ' full' : pct >= 80 ? ' hi' : '';
    const exp = f.expired ? ' <span class="exp">expired</span>' : '';
    return `<div class="feat"><span class="fn">${e(f.name)}</span>` +
      `<span class="bar" title="${pct}%"><span class="fill${cls}" style="width:${pct}%"></span></span>` +
      `<span>${e(f.inUse)}/${e(f.issued)}</span>${exp}</div>`;
  }).join('');
}

function totalRow(pool: PoolStats, now: number): string {
  const t = pool.totals;
  const { act, bck, weight, uweight } = upCounts(pool.servers);
  let chk = 0;
  let dwn = 0;
  for (const s of pool.servers) {
    chk += s.checkFailures;
    dwn += s.downTransitions;
  }
  const status = pool.available ? 'UP' : 'DOWN';
  return `<tr class="total"><td>Total</td>${num(pool.queue.cur)}${num(pool.queue.max)}` +
    `${num(t.scur)}${num(t.smax)}${num(t.slim)}${num(t.stot)}${num(t.bytesIn)}${num(t.bytesOut)}` +
    `${num(t.connectErrors)}${num(t.retries)}${num(t.redispatches)}` +
    `<td class="st"><span class="badge ${pool.available ? 'b-up' : 'b-down'}">${status}</span></td><td></td>` +
    `<td class="n">${weight}/${uweight}</td><td></td><td class="n">${act}</td><td class="n">${bck}</td>` +
    `${num(chk)}${num(dwn)}` +
    `<td class="n">${pool.lastChangeAt == null ? '-' : formatDuration(now - pool.lastChangeAt)}</td>` +
    `<td class="n">${pool.downtimeMs === undefined ? '-' : formatDuration(pool.downtimeMs)}</td>` +
    `${num(pool.affinity.bindings)}<td></td></tr>\n`;
}

function eventsTable(events: readonly StatsEvent[], limit: number): string {
  const rows: string[] = [];
  for (let i = events.length - 1; i >= 0 && rows.length < limit; i--) {
    const ev = events[i]!;
    const change = ev.from !== undefined || ev.to !== undefined ? `${e(ev.from ?? '')} &rarr; ${e(ev.to ?? '')}` : '';
    rows.push(`<tr><td>${e(formatTime(ev.at))}</td><td>${e(ev.type)}</td><td>${e(ev.pool ?? '')}</td>` +
      `<td>${e(ev.server ?? '')}</td><td>${change}</td><td class="r">${e(ev.reason)}</td></tr>\n`);
  }
  return `<h2>Recent events <small class="muted">(latest ${limit}, newest first; all in /api/events)</small></h2>\n` +
    '<table class="ev"><thead><tr><th>Time (UTC)</th><th>Event</th><th>Pool</th><th>Server</th><th>Change</th><th>Reason</th></tr></thead><tbody>\n' +
    (rows.length ? rows.join('') : '<tr><td colspan="6" class="muted">no event yet</td></tr>\n') +
    '</tbody></table>\n';
}

/** A numeric cell; null (no limit) is blank, as on HAProxy's page. */
function num(v: number | null): string {
  return v === null ? '<td class="n"></td>' : `<td class="n">${e(v)}</td>`;
}
