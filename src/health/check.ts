/**
 * One health check of one server. Every check type (tcp, send_expect, lmstat, external) is a `Check`: `run()`
 * never throws and always settles within the configured timeout, with its sockets or process cleaned up.
 */
import { performance } from 'node:perf_hooks';
import type { CheckConfig } from '../config/proxy-config.ts';
import { errorMessage } from '../common/errors.ts';
import type { CheckResult, FeatureUsage, RedundancyDetail } from './types.ts';

/** What a check needs to know of the server it checks. `HealthSubject` is one. */
export interface CheckTarget {
  readonly host: string;
  readonly ports: Readonly<Record<string, number>>;
}

export interface Check {
  /** Settles within the configured timeout; `signal` cancels early (monitor stopped or reconfigured). */
  run(target: CheckTarget, signal: AbortSignal): Promise<CheckResult>;
}

/** What a check body decides; timing is added by `runBounded`. */
export interface Verdict {
  ok: boolean;
  reason: string;
  master?: boolean;
  features?: readonly FeatureUsage[];
  redundancy?: string;
  redundancyDetail?: RedundancyDetail;
}

/**
 * A failure with an operator-readable reason (`connect refused`). Check bodies throw it; anything else thrown is
 * a bug and is reported by its message.
 */
export class CheckFailure extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'CheckFailure';
  }
}

/** Abort reason for leftovers of a finished check; one shared instance, an Error's stack is not free. */
const FINISHED = new CheckFailure('check finished');

export const PASS: Verdict = Object.freeze({ ok: true, reason: 'ok' });

/** The named port `name` of `target`, or a CheckFailure that says which name is missing. */
export function portOf(target: CheckTarget, name: string): number {
  const port = target.ports[name];
  if (port === undefined) throw new CheckFailure(`no port named ${name}`);
  return port;
}

/**
 * Runs `body` with a signal that aborts at `timeoutMs` or when `outer` aborts, and turns its outcome into a
 * CheckResult. The race against the abort means a body that forgets the signal still cannot overrun the timeout;
 * bodies must still release their resources when the signal fires.
 */
export async function runBounded(
  timeoutMs: number,
  outer: AbortSignal,
  body: (signal: AbortSignal) => Promise<Verdict>,
): Promise<CheckResult> {
  const started = performance.now();
  const ac = new AbortController();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(ac.signal.reason);
    ac.signal.addEventListener('abort', onAbort, { once: true });
  });
  const timer = setTimeout(() => ac.abort(new CheckFailure(`timeout after ${timeoutMs}ms`)), timeoutMs);
  const cancel = (): void => ac.abort(new CheckFailure('check cancelled'));
  if (outer.aborted) cancel();
  else outer.addEventListener('abort', cancel, { once: true });

  let verdict: Verdict;
  try {
    verdict = await Promise.race([body(ac.signal), aborted]);
  } catch (err) {
    verdict = { ok: false, reason: errorMessage(err) };
  } finally {
    clearTimeout(timer);
    outer.removeEventListener('abort', cancel);
    if (onAbort) ac.signal.removeEventListener('abort', onAbort);
  }
  // A failed part (one refused port of several) leaves the others in flight: end them. A pass has closed its
  // sockets already, and skipping the abort keeps the common case cheap (1000 servers a second).
  if (!verdict.ok && !ac.signal.aborted) ac.abort(FINISHED);
  return {
    ...verdict,
    durationMs: Math.round((performance.now() - started) * 10) / 10,
    at: Date.now(),
  };
}

/** Every named port the check must see accepting: the check port plus `ports`, without duplicates. */
export function portsToProbe(check: CheckConfig): string[] {
  return [...new Set([check.port, ...check.ports])];
}

/** Keeps a reason one short line: the stats page and logs show it as is. */
export function shortReason(text: string, max = 160): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 3)}...` : line;
}
