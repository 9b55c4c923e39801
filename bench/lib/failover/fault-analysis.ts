/**
 * What a fault did to a recorded session load (session-load.ts). Sessions are split by when they began:
 * - in flight at the fault (began before it, still running): a license connection the dead or hung server held.
 *   No layer-4 balancer can save one of those once its server dies mid-answer; they are counted, not blamed.
 *   A kill is not instant: between kill() and the process being gone its listening socket still completes
 *   handshakes, and those connections are reset when it goes. Sessions begun in that window (`settledAt`) count
 *   as in flight too;
 * - new (began once the fault was complete): every one of these the balancer could have sent to a working server.
 *   A failed new session is what a failover gap costs.
 * Times (gap, last failure) are measured from `faultAt`.
 */
import type { SessionRecord } from './session-load.ts';

export interface FaultReport {
  /** Sessions that began before the fault and had ended, all of them whole, before it. */
  before: number;
  /** Sessions that failed before the fault (the baseline must be clean). */
  failedBefore: number;
  /** Sessions in flight at the fault (or begun while it was happening). */
  inFlight: number;
  /** Of those, the ones that failed. */
  cut: number;
  /** Sessions that began once the fault was complete. */
  after: number;
  /** Of those, the ones that failed. */
  failedAfter: number;
  /** ms from the fault to the first GRANTED by `secondary` (null: none). */
  firstSecondaryGrantMs: number | null;
  /** ms from the fault to the start of the last new session that failed (null: none failed). */
  lastFailureStartMs: number | null;
  /** New sessions granted by the faulty server after the fault (a hung one never grants; a killed one cannot). */
  grantedByFaultyAfter: number;
  /** A few failure texts of new sessions, counted by text. */
  errors: Array<{ error: string; count: number }>;
}

export function analyseFault(
  records: readonly SessionRecord[],
  faultAt: number,
  names: { faulty: string; secondary: string },
  settledAt = faultAt,
): FaultReport {
  const r: FaultReport = {
    before: 0,
    failedBefore: 0,
    inFlight: 0,
    cut: 0,
    after: 0,
    failedAfter: 0,
    firstSecondaryGrantMs: null,
    lastFailureStartMs: null,
    grantedByFaultyAfter: 0,
    errors: [],
  };
  const errors = new Map<string, number>();
  for (const s of records) {
    if (s.grantedAt >= faultAt && s.server === names.secondary) {
      const ms = s.grantedAt - faultAt;
      if (r.firstSecondaryGrantMs === null || ms < r.firstSecondaryGrantMs) r.firstSecondaryGrantMs = ms;
    }
    if (s.start < settledAt) {
      if (s.end < faultAt) {
        r.before++;
        if (s.error !== null) r.failedBefore++;
      } else {
        r.inFlight++;
        if (s.error !== null) r.cut++;
      }
      continue;
    }
    r.after++;
    if (s.server === names.faulty && s.grantedAt > 0) r.grantedByFaultyAfter++;
    if (s.error === null) continue;
    r.failedAfter++;
    const ms = s.start - faultAt;
    if (r.lastFailureStartMs === null || ms > r.lastFailureStartMs) r.lastFailureStartMs = ms;
    // Ports and handles differ per session; the shape of the message is what groups them.
    const key = s.error.replace(/\d+/g, 'N');
    errors.set(key, (errors.get(key) ?? 0) + 1);
  }
  r.errors = [...errors].map(([error, count]) => ({ error, count })).sort((a, b) => b.count - a.count).slice(0, 5);
  return r;
}
