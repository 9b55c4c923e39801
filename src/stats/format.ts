/** Text helpers shared by the renderers. */

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const HTML_SPECIAL = /[&<>"']/g;
const HTML_SPECIAL_TEST = /[&<>"']/; // no `g`: a global regex's test() keeps state between calls

/** Escapes text for an HTML element body or a quoted attribute value. Every config- or server-supplied string goes through it. */
export function escapeHtml(value: string | number): string {
  const s = String(value);
  return HTML_SPECIAL_TEST.test(s) ? s.replace(HTML_SPECIAL, (c) => HTML_ESCAPES[c]!) : s;
}

/** Compact age/duration as HAProxy's page writes it: `12s`, `4m07s`, `1h02m`, `3d04h`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) ms = 0;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${pad2(s % 60)}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${pad2(m % 60)}m`;
  return `${Math.floor(h / 24)}d${pad2(h % 24)}h`;
}

/** Milliseconds as `12ms` under a second, else `1.23s`. */
export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(2)}s`;
}

/** `2025-01-31 14:03:07Z`: UTC, second precision, for event tables. */
export function formatTime(at: number): string {
  const d = new Date(at);
  return Number.isNaN(d.getTime()) ? '-' : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}
