import type { FeatureKind } from '../config/licd-config.ts';
import type { HolderInfo } from './feature-pool.ts';

/** One user line of a feature: a checkout, a token connection's draw, or a queued checkout. */
export interface LicdUserStatus extends HolderInfo {
  count: number;
  queued: boolean;
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
  /** A standalone daemon is its own master (SPEC 4.2 example: `UP (MASTER)`). */
  master: boolean;
  host: string;
  ports: { license: number; tokens: number };
  features: LicdFeatureStatus[];
  sessions: LicdSessionStatus[];
  connections: { license: number; tokens: number };
}
