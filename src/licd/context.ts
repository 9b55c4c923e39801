import type { Logger } from '../common/logger.ts';
import type { AllowList } from '../common/allow-list.ts';
import type { FeaturePool } from './feature-pool.ts';
import type { Grant } from './grant.ts';

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
}
