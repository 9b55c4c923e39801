import type { Logger } from '../common/logger.ts';
import type { AllowList } from '../common/allow-list.ts';
import type { FeaturePool } from './feature-pool.ts';
import type { Grant, Identity } from './grant.ts';
import type { ReplicatedOp } from './peer-messages.ts';

/** What a session needs of its daemon: a narrow view, so sessions never reach into the server's internals. */
export interface LicdContext {
  readonly name: string;
  readonly logger: Logger;
  /** Actual bound ports (differ from the configured ones when those are 0). */
  readonly licensePort: number;
  readonly tokensPort: number;
  /** Null: every client allowed. */
  readonly allow: AllowList | null;
  readonly proxyProtocol: boolean;
  pool(feature: string): FeaturePool | undefined;
  /** The token pool TOKENS draws from without `feature=`: the first `kind: tokens` feature of the file. */
  defaultTokenPool(): FeaturePool | undefined;
  newHandle(): string;
  grant(handle: string): Grant | undefined;
  addGrant(grant: Grant): void;
  removeGrant(grant: Grant): void;
  statusText(): string;
  statusJson(): string;
  /** The session's connection is gone; the server stops tracking it. */
  forget(session: object): void;
  /** True in a redundant set: changes are replicated, grants wait for their acknowledgement. */
  readonly replicating: boolean;
  /** Null when this daemon may grant now; else the ERR line (`NOT_MASTER master=...`, `NO_QUORUM`). */
  gate(): string | null;
  /** Streams a change to the peers; `done` (if given) runs once it is acknowledged, or with false when it cannot be. */
  replicate(op: ReplicatedOp, done?: (ok: boolean) => void): void;
  /** Re-attaches a replicated session (RESUME) to `owner`; undefined when the handle is unknown here. */
  resume(handle: string, owner: { touch(): void }, port: number): Grant | undefined;
  /**
   * Re-attaches the detached session a replayed CHECKOUT names by its request id (same feature, count, user, host);
   * undefined when there is none here.
   */
  reclaim(req: string, pool: FeaturePool, count: number, identity: Identity, owner: { touch(): void }, port: number): Grant | undefined;
  /**
   * The grant's connection ended without QUIT: true when the grant was kept as a detached session awaiting a RESUME
   * (`redundancy.hold_on_disconnect`, serving member), false when the caller must end it.
   */
  holdDisconnected(grant: Grant): boolean;
  /** Id of a queued checkout, unique in the set (replicated for status). */
  newQueueId(): string;
}
