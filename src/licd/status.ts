import type { FeatureKind } from '../config/licd-config.ts';
import type { HolderInfo } from './feature-pool.ts';
import type { RedundancyStatus } from './redundancy.ts';

/** One user line of a feature: a checkout, a token connection's draw, or a queued checkout. */
export interface LicdUserStatus extends HolderInfo {
  count: number;
  queued: boolean;
  /** A replicated session without a client (redundancy): freed at this time (ms since epoch) unless resumed. */
  resumeBy?: number;
}

export interface LicdFeatureStatus {
  name: string;
  version: string;
  kind: FeatureKind;
  issued: number;
  inUse: number;
  queued: number;
  /** `YYYY-MM-DD` or null (permanent). */
  expires: string | null;
  expired: boolean;
  users: LicdUserStatus[];
}

export interface LicdSessionStatus {
  user: string;
  host: string;
  display: string;
  pid: number | null;
  /** Client address (the PROXY header's source when proxy_protocol is on). */
  address: string;
  port: number;
  since: number;
  lastActivity: number;
  handles: string[];
  queued: number;
}

/**
 * A snapshot of a daemon, built on demand (STATUS, tests, the demo): plain data, detached from live state.
 * `STATUS json` answers exactly this object as one JSON line.
 */
export interface LicdStatus {
  server: string;
  version: string;
  up: boolean;
  /** A standalone daemon is its own master (SPEC 4.2 example: `UP (MASTER)`); in a set, only the serving member. */
  master: boolean;
  /** Pair / triad state (SPEC 4.3); absent on a standalone daemon. */
  redundancy?: RedundancyStatus;
  host: string;
  ports: { license: number; tokens: number };
  features: LicdFeatureStatus[];
  sessions: LicdSessionStatus[];
  connections: { license: number; tokens: number };
}
