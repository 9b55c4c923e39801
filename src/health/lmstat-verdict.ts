/**
 * Turns a parsed lmstat-style answer into a check verdict, the same way for `lmstat` (licd STATUS) and for
 * `external` (real `lmutil lmstat -a` output): fail when the checked server is not UP, a vendor daemon is down,
 * or a required feature is missing or expired; report per-feature usage, the master flag and the pair status.
 * "Not master" is not a failure: a healthy non-master is UP, the pool simply sends it no client.
 */
import { parseLmstat, type LmstatServer, type LmstatStatus } from '../client/lmstat-parser.ts';
import { shortReason, type Verdict } from './check.ts';
import type { FeatureUsage } from './types.ts';

const MONTHS: Record<string, number> = {
  jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11,
};

/** Parses and judges lmstat text for the server at `host`. */
export function lmstatVerdict(text: string, host: string, requireFeatures: readonly string[], now = Date.now()): Verdict {
  return judgeLmstat(parseLmstat(text), host, requireFeatures, now);
}

export function judgeLmstat(status: LmstatStatus, host: string, requireFeatures: readonly string[], now = Date.now()): Verdict {
  const features = featureUsage(status, now);
  const self = findSelf(status, host);
  const extras: Omit<Verdict, 'ok' | 'reason'> = {
    master: self ? self.master && self.up : false,
    features,
    ...(status.redundancy ? { redundancy: status.redundancy.state } : {}),
    ...(status.redundancyDetail ? { redundancyDetail: { self: self?.host ?? null, mode: status.redundancy?.mode ?? null, ...status.redundancyDetail } } : {}),
  };
  const fail = (reason: string): Verdict => ({ ok: false, reason: shortReason(reason), ...extras });

  if (status.servers.length === 0) {
    return fail(status.errors[0] ?? 'no server status in answer');
  }
  // Several servers and none of them is us by name: judge the set (any UP) rather than guess a member.
  const up = self ? self.up : status.up;
  if (!up) return fail(self?.error ? `not UP: ${self.error}` : 'not UP');
  const downVendor = status.vendors.find((v) => !v.up);
  if (downVendor) return fail(`vendor daemon ${downVendor.name} down`);
  for (const name of requireFeatures) {
    const f = features.find((x) => x.name === name);
    if (!f) return fail(`feature ${name} missing`);
    if (f.expired) return fail(`feature ${name} expired`);
  }
  return { ok: true, reason: 'ok', ...extras };
}

/**
 * The server line that describes the checked server: the only one, or the one whose name matches the configured
 * host (full name or its first label, case-insensitive). A FlexLM triad lists all three members from any of
 * them, so only the name tells which one we asked.
 */
function findSelf(status: LmstatStatus, host: string): LmstatServer | undefined {
  const { servers } = status;
  if (servers.length === 1) return servers[0];
  const want = host.toLowerCase();
  const short = want.split('.')[0]!;
  return (
    servers.find((s) => s.host.toLowerCase() === want) ??
    servers.find((s) => s.host.toLowerCase().split('.')[0] === short && /[a-z]/.test(short))
  );
}

/** One entry per feature name: lmstat lists a feature once per license line, and stats key by name. */
function featureUsage(status: LmstatStatus, now: number): FeatureUsage[] {
  const byName = new Map<string, FeatureUsage>();
  for (const f of status.features) {
    // A server may also say it in the heading (`Users of X:  (Error: ... expired ...)`).
    const expired = (f.expiry !== undefined && isExpired(f.expiry, now)) || /expired/i.test(f.error ?? '');
    const seen = byName.get(f.name);
    if (!seen) {
      byName.set(f.name, {
        name: f.name,
        issued: f.issued,
        inUse: f.inUse,
        ...(f.expiry !== undefined ? { expiry: f.expiry } : {}),
        ...(f.expiry !== undefined || expired ? { expired } : {}),
      });
      continue;
    }
    seen.issued += f.issued;
    seen.inUse += f.inUse;
    // The feature is expired only when every license line of it is.
    if (seen.expired && !expired) {
      seen.expired = false;
      if (f.expiry !== undefined) seen.expiry = f.expiry;
      else delete seen.expiry;
    }
  }
  return [...byName.values()];
}

/**
 * FlexNet expiry dates (`31-dec-2027`); year 0 (`1-jan-0`) and `permanent` never expire. A date that does not
 * parse is not treated as expired: a wrong DOWN costs more than a missed expiry, which licd reports anyway.
 */
export function isExpired(expiry: string, now: number): boolean {
  const m = /^(\d{1,2})-([a-z]{3})-(\d{1,4})$/i.exec(expiry.trim());
  if (!m) return false;
  const month = MONTHS[m[2]!.toLowerCase()];
  let year = Number(m[3]);
  if (month === undefined || year === 0) return false;
  if (m[3]!.length <= 2) year += year >= 70 ? 1900 : 2000;
  // Valid through the whole last day, in the server's (assumed local) time.
  const end = new Date(year, month, Number(m[1]) + 1).getTime();
  return now >= end;
}
