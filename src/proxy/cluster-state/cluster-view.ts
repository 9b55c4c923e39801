/**
 * What the stats adapter and the admin API see of the cluster state (SPEC 9), apart from its implementation so
 * that src/stats and ProxyApp import no Redis client. Null where `cluster:` is absent.
 */
import type { ProxyEvent } from '../event-log.ts';

export interface PeerStatus {
  instance: string;
  /** Its heartbeat key still lives in Redis. */
  alive: boolean;
  /** Time since its last heartbeat, from the key's Redis TTL (no clock of another machine involved); null: gone. */
  lastHeartbeatAgoMs: number | null;
  version: string | null;
  configHash: string | null;
}

export interface ClusterStatus {
  name: string;
  instance: string;
  redis: { where: string; connected: boolean; since: number; lastError: string | null; errors: number };
  bindings: { pendingWriteBack: number; writtenBack: number; conflicts: number };
  /** The other instances (this one excluded). */
  peers: PeerStatus[];
}

export type AdminChange = { state: 'ready' | 'drain' | 'maint' } | { weight: number };

export interface ClusterView {
  status(): ClusterStatus;
  /** The cluster's event history (every instance's, oldest first), or null: only this instance's is known. */
  events(): ProxyEvent[] | null;
  /** An admin change made through this instance's API: shared with every instance. */
  adminChanged(pool: string, server: string, change: AdminChange): void;
}
