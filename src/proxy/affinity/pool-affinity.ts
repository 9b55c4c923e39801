/**
 * Affinity of one pool (SPEC 2.3): the hook `Pool.select` hands a client to before balancing, so that every port
 * of a license session reaches the same server. Variants: `source-affinity.ts` (client IP -> server table) and
 * `handle-affinity.ts` (the server named in a licd handle). With `by: none` a pool has no affinity object at
 * all, so the plain balancing path pays nothing.
 */
import type { PoolConfig } from '../../config/proxy-config.ts';
import type { SelectResult } from '../contracts.ts';
import type { Server } from '../server.ts';

export type { AffinityHost, AffinitySnapshot, PoolAffinity } from '../contracts.ts';

/**
 * Whether a client bound to `s` may still be sent there. DRAIN, weight 0 and a pending failback delay keep bound
 * clients (a server in its failback delay can only hold bindings made after its recovery, when it was the only
 * usable one); DOWN, MAINT and removal do not; in `master` mode only the master serves.
 */
export function takesBound(s: Server, mode: PoolConfig['mode']): boolean {
  return s.takesBoundClients() && (mode !== 'master' || s.isMaster);
}

/** The bound server, or `'full'` when it has no free slot (the client waits in the pool queue for it). */
export function placeOn(s: Server): SelectResult {
  return s.isFull() ? 'full' : s;
}
