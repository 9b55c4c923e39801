/**
 * `/stats/usage`: the usage history as server-side SVG charts, one per pool and feature (the pool's total: seats in
 * use, mean and peak per hour, against seats issued; the highest peak and the hours at exhaustion marked), and per
 * server a row of peak / mean / issued / denied over the range. No JavaScript: plain HTML, inline SVG, and a GET
 * form for the filters. Every name goes through escapeHtml, in text and in attributes.
 */
import { escapeHtml as e, formatTime } from '../format.ts';
import { toSeries, type UsageSeries } from './render-usage-data.ts';
import type { UsageQuery, UsageResult } from './usage-recorder.ts';
import { POOL_TOTAL, type UsageRecord } from './usage-record.ts';

const W = 760;
const H = 220;
const PAD = { left: 44, right: 14, top: 14, bottom: 30 };
const HOUR = 3_600_000;
const TICK_STEPS = [100, 1000, 10_000, 60_000, 600_000, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, 24 * HOUR, 2 * 24 * HOUR, 7 * 24 * HOUR, 14 * 24 * HOUR, 30 * 24 * HOUR];

const STYLE = `
body{font-family:Arial,Helvetica,sans-serif;font-size:12px;margin:8px 12px;color:#000;background:#fff}
h1{font-size:18px;margin:0 0 6px;color:#fff;background:#20377a;padding:6px 8px}
h1 a{color:#dde;font-size:12px;font-weight:normal;margin-left:10px}
h2{font-size:14px;margin:16px 0 4px;padding:3px 6px;background:#e8e8f0;border-left:4px solid #20377a}
form{margin:4px 0 8px}form input{font-size:12px;width:150px}
svg.usage-chart{border:1px solid #999;background:#fcfcff}
svg .axis{stroke:#666;stroke-width:1}svg .grid{stroke:#ddd;stroke-width:1}
svg text{font-size:10px;fill:#333}
svg .issued{fill:none;stroke:#555;stroke-width:1.5;stroke-dasharray:5 3}
svg .mean{fill:none;stroke:#2060c0;stroke-width:1.5}
svg .mean-area{fill:#2060c0;fill-opacity:.12;stroke:none}
svg .peak{fill:none;stroke:#e08000;stroke-width:1.2}
svg .peak-max{fill:#e08000;stroke:#000}
svg .exhausted{fill:#d02020;stroke:none}
svg .denied{fill:#d02020;fill-opacity:.6}
table{border-collapse:collapse;margin:4px 0 6px;font-size:11px}
th,td{border:1px solid #999;padding:1px 4px;white-space:nowrap}th{background:#20377a;color:#fff;font-weight:normal}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.legend span{display:inline-block;margin-right:12px}.sw{display:inline-block;width:18px;height:3px;vertical-align:middle;margin-right:3px}
.muted{color:#666}
`;

export function renderUsagePage(q: UsageQuery, result: UsageResult): string {
  const series = toSeries(result.records);
  const charts = new Map<string, { pool: string; feature: string; total: UsageSeries | null; servers: UsageSeries[] }>();
  for (const s of series) {
    const key = `${s.pool}\n${s.feature}`;
    let c = charts.get(key);
    if (c === undefined) charts.set(key, (c = { pool: s.pool, feature: s.feature, total: null, servers: [] }));
    if (s.server === POOL_TOTAL) c.total = s;
    else c.servers.push(s);
  }
  const out: string[] = [
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>licproxy usage history</title>',
    '<meta name="viewport" content="width=device-width, initial-scale=1"><style>', STYLE, '</style></head><body>\n',
    `<h1>licproxy usage history <a href="/stats">&larr; stats</a></h1>\n`,
    filterForm(q),
    `<p class="muted">${e(formatTime(q.from))} to ${e(formatTime(q.to))} &middot; one point per ${e(bucketText(result.bucketMs))} &middot; ` +
      `<a href="${e(link('/api/usage', q))}">JSON</a> &middot; <a href="${e(link('/api/usage.csv', q))}">CSV</a></p>\n`,
    '<p class="legend"><span><i class="sw" style="background:#2060c0"></i>mean in use</span>' +
      '<span><i class="sw" style="background:#e08000"></i>peak in use</span>' +
      '<span><i class="sw" style="background:#555"></i>issued (dashed)</span>' +
      '<span><i class="sw" style="background:#d02020"></i>at exhaustion / denials</span></p>\n',
  ];
  if (charts.size === 0) out.push('<p class="muted" id="no-usage">no usage recorded in this range yet (hours are written as they close)</p>\n');
  for (const c of charts.values()) {
    out.push(`<h2 class="usage-feature">${e(c.feature)} <small class="muted">pool ${e(c.pool)}</small></h2>\n`);
    out.push(c.total ? chart(c.pool, c.feature, c.total.records, result.bucketMs, result.openBucket) : '<p class="muted">no check reported this feature in the range (denials only)</p>\n');
    out.push(serverTable(c.total, c.servers));
  }
  out.push('</body></html>\n');
  return out.join('');
}

function filterForm(q: UsageQuery): string {
  const field = (name: string, value: string | undefined, hint: string): string =>
    `<label>${name} <input name="${name}" value="${e(value ?? '')}" placeholder="${e(hint)}"></label> `;
  return '<form method="get" action="/stats/usage">' +
    field('feature', q.feature, 'all') + field('pool', q.pool, 'all') +
    field('from', new Date(q.from).toISOString(), 'ISO 8601') + field('to', new Date(q.to).toISOString(), 'ISO 8601') +
    '<button type="submit">show</button></form>\n';
}

function link(path: string, q: UsageQuery): string {
  const p = new URLSearchParams();
  if (q.feature !== undefined) p.set('feature', q.feature);
  if (q.pool !== undefined) p.set('pool', q.pool);
  if (q.server !== undefined) p.set('server', q.server);
  p.set('from', new Date(q.from).toISOString());
  p.set('to', new Date(q.to).toISOString());
  return `${path}?${p.toString()}`;
}

function bucketText(ms: number): string {
  return ms === 3_600_000 ? 'hour' : `${ms} ms (test bucket)`;
}

function chart(pool: string, feature: string, rs: readonly UsageRecord[], bucketMs: number, openBucket: number): string {
  const sampled = rs.filter((r) => r.samples > 0);
  const x0 = rs[0]!.at;
  const x1 = rs[rs.length - 1]!.at + bucketMs;
  const yMax = niceMax(Math.max(1, ...sampled.map((r) => Math.max(r.issued, r.peak))));
  const iw = W - PAD.left - PAD.right;
  const ih = H - PAD.top - PAD.bottom;
  const x = (t: number): number => round1(PAD.left + ((t - x0) / (x1 - x0)) * iw);
  const y = (v: number): number => round1(PAD.top + ih - (v / yMax) * ih);
  const mid = (r: UsageRecord): number => x(r.at + bucketMs / 2);
  const parts: string[] = [];
  parts.push(`<svg class="usage-chart" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" ` +
    `aria-label="${e(`${feature} in pool ${pool}: seats in use against issued`)}" data-pool="${e(pool)}" data-feature="${e(feature)}">`);
  parts.push(`<title>${e(`${feature} (pool ${pool}): in use vs issued`)}</title>`);
  for (const v of [0, yMax / 2, yMax]) {
    parts.push(`<line class="grid" x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(v)}" y2="${y(v)}"/>`);
    parts.push(`<text x="${PAD.left - 4}" y="${y(v) + 3}" text-anchor="end">${e(round1(v))}</text>`);
  }
  parts.push(`<line class="axis" x1="${PAD.left}" x2="${PAD.left}" y1="${PAD.top}" y2="${PAD.top + ih}"/>`);
  parts.push(`<line class="axis" x1="${PAD.left}" x2="${W - PAD.right}" y1="${PAD.top + ih}" y2="${PAD.top + ih}"/>`);
  // Time ticks at a round step (hours, days) giving at most 8 labels; the range ends are labelled in the table head.
  const span = x1 - x0;
  const step = TICK_STEPS.find((s) => span / s <= 8) ?? span;
  for (let tk = Math.ceil(x0 / step) * step; tk <= x1; tk += step) {
    const label = step >= 86_400_000 ? new Date(tk).toISOString().slice(5, 10) : step >= 3_600_000 ? new Date(tk).toISOString().slice(11, 16) : new Date(tk).toISOString().slice(11, 23);
    parts.push(`<line class="grid" x1="${x(tk)}" x2="${x(tk)}" y1="${PAD.top}" y2="${PAD.top + ih}"/>`);
    parts.push(`<text x="${x(tk)}" y="${PAD.top + ih + 12}" text-anchor="middle">${e(label)}</text>`);
  }
  parts.push(`<text x="${PAD.left}" y="${H - 3}">${e(formatTime(x0))}</text>`);
  parts.push(`<text x="${W - PAD.right}" y="${H - 3}" text-anchor="end">${e(formatTime(x1))}</text>`);
  // Denials: a bar at the bottom of each bucket that had any, its height the share of the largest count.
  const maxDenied = Math.max(0, ...rs.map((r) => r.denied));
  for (const r of rs) {
    if (r.denied === 0) continue;
    const h = Math.max(2, Math.round((r.denied / maxDenied) * 12));
    parts.push(`<rect class="denied" x="${x(r.at)}" y="${PAD.top + ih - h}" width="${Math.max(1, round1(x(r.at + bucketMs) - x(r.at)))}" height="${h}">` +
      `<title>${e(`${r.denied} denied, ${formatTime(r.at)}`)}</title></rect>`);
  }
  if (sampled.length > 0) {
    // Issued as a step line (it changes at a license file reload, not gradually).
    const steps = sampled.map((r, i) => `${i === 0 ? 'M' : 'L'}${x(r.at)},${y(r.issued)} L${x(r.at + bucketMs)},${y(r.issued)}`).join(' ');
    parts.push(`<path class="issued" d="${steps}"/>`);
    const meanLine = sampled.map((r, i) => `${i === 0 ? 'M' : 'L'}${mid(r)},${y(r.mean)}`).join(' ');
    parts.push(`<path class="mean-area" d="${meanLine} L${mid(sampled[sampled.length - 1]!)},${y(0)} L${mid(sampled[0]!)},${y(0)} Z"/>`);
    parts.push(`<path class="mean" d="${meanLine}"/>`);
    parts.push(`<path class="peak" d="${sampled.map((r, i) => `${i === 0 ? 'M' : 'L'}${mid(r)},${y(r.peak)}`).join(' ')}"/>`);
    for (const r of sampled) {
      if (r.issued > 0 && r.peak >= r.issued) {
        parts.push(`<circle class="exhausted" cx="${mid(r)}" cy="${y(r.peak)}" r="3"><title>${e(`all ${r.issued} seats in use, ${formatTime(r.at)}`)}</title></circle>`);
      }
    }
    const top = sampled.reduce((a, b) => (b.peak > a.peak ? b : a));
    const partial = top.at === openBucket ? ' (hour in progress)' : '';
    parts.push(`<circle class="peak-max" cx="${mid(top)}" cy="${y(top.peak)}" r="4.5"><title>${e(`peak ${top.peak} of ${top.issued}, ${formatTime(top.at)}${partial}`)}</title></circle>`);
    const anchor = mid(top) > W / 2 ? 'end' : 'start';
    const dx = anchor === 'end' ? -7 : 7;
    parts.push(`<text class="peak-label" x="${round1(mid(top) + dx)}" y="${Math.max(PAD.top + 9, y(top.peak) - 6)}" text-anchor="${anchor}">${e(`peak ${top.peak}/${top.issued} at ${formatTime(top.at)}`)}</text>`);
  }
  parts.push('</svg>\n');
  return parts.join('');
}

function serverTable(total: UsageSeries | null, servers: readonly UsageSeries[]): string {
  const rows = [...(total ? [total] : []), ...servers].map((s) => {
    const sampled = s.records.filter((r) => r.samples > 0);
    const n = sampled.reduce((a, r) => a + r.samples, 0);
    const mean = n > 0 ? sampled.reduce((a, r) => a + r.mean * r.samples, 0) / n : null;
    const peak = sampled.length ? Math.max(...sampled.map((r) => r.peak)) : null;
    const issued = sampled.length ? Math.max(...sampled.map((r) => r.issued)) : null;
    const denied = s.records.reduce((a, r) => a + r.denied, 0);
    const name = s.server === POOL_TOTAL ? '<b>pool total</b>' : e(s.server);
    return `<tr><td>${name}</td>${cell(peak)}${cell(mean === null ? null : Math.round(mean * 100) / 100)}${cell(issued)}${cell(denied)}${cell(sampled.length)}</tr>`;
  });
  return '<table class="usage-servers"><thead><tr><th>Server</th><th>Peak</th><th>Mean</th><th>Issued</th><th>Denied</th><th>Hours</th></tr></thead><tbody>' +
    rows.join('') + '</tbody></table>\n';
}

function cell(v: number | null): string {
  return `<td class="n">${v === null ? '-' : e(v)}</td>`;
}

function niceMax(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v * 1.05) return m * p;
  return 10 * p;
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}
