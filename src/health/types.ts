/**
 * The contract between health checking (src/health) and the proxy (src/proxy). A pool never runs checks; a
 * checker never routes. The proxy's Server implements HealthSubject; a HealthMonitor drives it.
 */
import type { CheckConfig } from '../config/proxy-config.ts';

/** Per-feature license usage read from an lmstat-style answer. */
export interface FeatureUsage {
  name: string;
  issued: number;
  inUse: number;
  /** Expiry as written by the server (e.g. `31-dec-2027`), if it said. */
  expiry?: string;
  expired?: boolean;
}

export interface CheckResult {
  ok: boolean;
  /**
   * Why it failed (`connect refused`, `timeout after 500ms`, `feature LS-DYNA expired`, `not UP`, `exit 2: ...`),
   * or 'ok'. Not being master is not a failure: see `master`.
   */
  reason: string;
  durationMs: number;
  /** Date.now() when the check ended. */
  at: number;
  /** From lmstat / external checks whose output parsed as lmstat. */
  master?: boolean;
  features?: readonly FeatureUsage[];
  /** Pair/triad status line from licd STATUS (`paired and synced`, `peer not available`, ...). */
  redundancy?: string;
  /** licd's role, master and peers as the checked member reports them (the redundancy view on /stats). */
  redundancyDetail?: RedundancyDetail;
}

export interface RedundancyDetail {
  /** The member's name as its status names itself. */
  self: string | null;
  /** `triad` / `backup` from the `Redundancy:` line; null when it did not say. */
  mode: string | null;
  role: string;
  master: string | null;
  peers: readonly { name: string; connected: boolean; role?: string; synced?: boolean }[];
}

/** The health state the pool routes on. `unknown` = no result yet: no client is sent there. */
export type HealthState = 'unknown' | 'up' | 'down';

/** What a monitor needs of the server it watches. */
export interface HealthSubject {
  readonly host: string;
  /** Every named port of the server, overrides applied. */
  readonly ports: Readonly<Record<string, number>>;
  /** Called on every transition (including the first result from `unknown`). */
  setHealth(state: 'up' | 'down', reason: string): void;
  /** Called after every check, pass or fail, for stats (last check, lmstat usage, master flag). */
  recordCheck(result: CheckResult): void;
  /**
   * A change is pending elsewhere that this server's checks may settle (a master pool with no master): checked at
   * `fast_interval` whatever its own state.
   */
  hurried?(): boolean;
  /** A passing result that brings a DOWN server UP without waiting for `rise` (the member a master pool needs). */
  upAtOnce?(result: CheckResult): boolean;
}

/** What the proxy needs of a monitor. */
export interface HealthMonitorLike {
  readonly state: HealthState;
  /** HAProxy-style transitional text: `UP`, `DOWN`, `UP 1/3` (falling), `DOWN 1/2` (rising), `no check`. */
  readonly statusText: string;
  start(): void;
  stop(): void;
  /** Passive health: a real client's connect failed. Counts as a failed check at once (fall still applies). */
  reportFailure(reason: string): void;
  /**
   * Something a client saw says the last result may be stale (a master's connection lost, another member naming the
   * master): check now (checks of one server start at least 50 ms apart). Absent where checks run elsewhere (workers).
   */
  checkSoon?(): void;
  /** Apply a changed check configuration (reload) without losing the current state. */
  update(check: CheckConfig): void;
}

/** Upper bounds (seconds) of the check-duration histogram every server keeps (Prometheus `le`). */
export const CHECK_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;

/** Every check's duration, counted as it happens (a scrape between two checks must not miss one). */
export interface CheckDurations {
  /** Non-cumulative count per bucket of CHECK_DURATION_BUCKETS; slower checks only count in `count`. */
  buckets: number[];
  sumSeconds: number;
  count: number;
}
