/**
 * SPEC 10: the `alerts:` list and `stats.events`, read by proxy-schema.ts. Every problem is one issue with its
 * line:column and YAML path, like the rest of the file.
 */
import { dirname, resolve } from 'node:path';
import { isScalar } from 'yaml';
import type { Cursor } from './cursor.ts';
import type { AlertConfig, AlertEventName, AlertFormat, EventFileConfig } from './proxy-config.ts';

export const ALERT_KEYS = ['name', 'url', 'format', 'events', 'feature_above', 'min_interval', 'timeout', 'retries', 'headers'] as const;
export const EVENT_FILE_KEYS = ['file', 'keep'] as const;
export const ALERT_EVENTS: readonly AlertEventName[] = ['down', 'up', 'failover', 'failback', 'pool_unavailable', 'reload_failed', 'feature_above'];
const FORMATS: readonly AlertFormat[] = ['slack', 'teams', 'json'];

export const ALERT_DEFAULTS = {
  format: 'json' as AlertFormat,
  events: ['down', 'up', 'failover', 'failback', 'pool_unavailable', 'reload_failed'] as readonly AlertEventName[],
  featureAbove: 0.9,
  minInterval: 60_000,
  timeout: 5_000,
  retries: 4,
};
export const EVENT_FILE_DEFAULTS = { keep: 1000 };

/** A webhook list longer than this is a mistake (each alert holds a queue and a timer). */
const MAX_ALERTS = 32;
const MAX_HEADERS = 32;
const MAX_KEEP = 100_000;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/;
/** Headers the sender sets itself, or that would break the request. */
const RESERVED_HEADERS = new Set(['content-length', 'content-type', 'host', 'transfer-encoding', 'connection']);
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

export function readAlerts(c: Cursor): AlertConfig[] {
  const items = c.items();
  if (items.length > MAX_ALERTS) c.error(`at most ${MAX_ALERTS} alerts, got ${items.length}`);
  const out: AlertConfig[] = [];
  const names = new Set<string>();
  items.slice(0, MAX_ALERTS).forEach((item, i) => {
    const a = readAlert(item, i, names);
    if (a) out.push(a);
  });
  return out;
}

function readAlert(c: Cursor, index: number, names: Set<string>): AlertConfig | undefined {
  if (!c.map(ALERT_KEYS)) {
    if (!c.present) c.error('is empty: an alert needs at least a url');
    return undefined;
  }
  const url = readUrl(c.at('url'));
  const format = c.at('format').oneOf(FORMATS) ?? ALERT_DEFAULTS.format;
  const events = readEvents(c.at('events'));
  const featureAbove = readShare(c.at('feature_above'));
  if (featureAbove !== undefined && !(events ?? ALERT_DEFAULTS.events).includes('feature_above')) {
    c.at('feature_above').error('is set but events does not list feature_above: add it to events, e.g. events: [down, feature_above]');
  }
  const minInterval = c.at('min_interval').duration() ?? ALERT_DEFAULTS.minInterval;
  const timeout = c.at('timeout').duration({ min: 100 }) ?? ALERT_DEFAULTS.timeout;
  const retries = c.at('retries').int(0, 20) ?? ALERT_DEFAULTS.retries;
  const headers = readHeaders(c.at('headers'));
  let name = c.at('name').str({ pattern: NAME, hint: 'use letters, digits, "_", "-", ".", ":" (at most 64)' });
  if (name === undefined && url !== undefined) {
    const host = new URL(url).host;
    name = names.has(host) ? `${host}#${index}` : host;
  }
  if (name !== undefined && names.has(name) && c.at('name').present) c.at('name').error(`duplicate alert name "${name}"`);
  if (url === undefined || name === undefined) return undefined;
  names.add(name);
  return { name, url, format, events: events ?? ALERT_DEFAULTS.events, featureAbove: featureAbove ?? ALERT_DEFAULTS.featureAbove, minInterval, timeout, retries, headers };
}

function readUrl(c: Cursor): string | undefined {
  const text = c.str({ required: true });
  if (text === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    c.error('is not a URL: expected http://host[:port]/path or https://...');
    return undefined;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    // Never echo the URL: a webhook URL is a credential.
    c.error(`must be an http:// or https:// URL, got a ${u.protocol.replace(/[^a-z0-9+.-]/gi, '').slice(0, 20)}: URL`);
    return undefined;
  }
  return u.toString();
}

function readEvents(c: Cursor): AlertEventName[] | undefined {
  if (!c.present) return undefined;
  const before = c.issueCount;
  const out: AlertEventName[] = [];
  const items = c.items();
  for (const item of items) {
    const e = item.oneOf(ALERT_EVENTS);
    if (e !== undefined && !out.includes(e)) out.push(e);
  }
  if (items.length === 0 && c.issueCount === before) c.error(`lists no event; known: ${ALERT_EVENTS.join(', ')}`);
  return out;
}

/** `90%` -> 0.9; a bare number is refused (share or percentage?). */
function readShare(c: Cursor): number | undefined {
  if (!c.present) return undefined;
  const raw = isScalar(c.node) ? c.node.value : undefined;
  const text = typeof raw === 'string' ? raw : undefined;
  const m = text !== undefined ? /^(\d+(?:\.\d+)?)\s*%$/.exec(text.trim()) : null;
  const v = m ? Number(m[1]) : NaN;
  if (!(v > 0 && v <= 100)) {
    c.error(`must be a percentage above 0% up to 100%, e.g. 90%; got ${typeof raw === 'string' ? `"${raw.slice(0, 40)}"` : String(raw)}`);
    return undefined;
  }
  return v / 100;
}

function readHeaders(c: Cursor): Record<string, string> {
  const out: Record<string, string> = {};
  const entries = c.entries();
  if (entries.length > MAX_HEADERS) c.error(`at most ${MAX_HEADERS} headers`);
  for (const [key, v] of entries.slice(0, MAX_HEADERS)) {
    if (!HEADER_NAME.test(key)) {
      v.error('is not a valid HTTP header name');
      continue;
    }
    if (RESERVED_HEADERS.has(key.toLowerCase())) {
      v.error(`header ${key} is set by licproxy itself`);
      continue;
    }
    const raw = isScalar(v.node) ? v.node.value : undefined;
    const value = typeof raw === 'number' || typeof raw === 'boolean' ? String(raw) : v.str({ required: true });
    if (value === undefined) continue;
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(value) || value.length > 4096) {
      v.error('must be printable text up to 4096 characters (no control characters)');
      continue;
    }
    out[key] = value;
  }
  return out;
}

/** `stats.events: { file, keep }`; null when absent. */
export function readEventFile(c: Cursor, configFile: string): EventFileConfig | null {
  if (!c.map(EVENT_FILE_KEYS)) return null;
  const given = c.at('file').str({ required: true });
  const keep = c.at('keep').int(1, MAX_KEEP) ?? EVENT_FILE_DEFAULTS.keep;
  if (given === undefined) return null;
  // Relative to the configuration file, as `daemons:` and the token file are.
  return { file: resolve(dirname(configFile), given), keep };
}
