import { acceptWorkload } from './accept.ts';
import { bulkDownWorkload, bulkWorkload } from './bulk.ts';
import { idleWorkload } from './idle.ts';
import { pingWorkload, shortWorkload } from './license-load.ts';
import type { Workload } from './workload.ts';

/** In run order. `bulk-down` runs only when named in --only. */
export const WORKLOADS: readonly Workload[] = [shortWorkload, pingWorkload, idleWorkload, bulkWorkload, bulkDownWorkload, acceptWorkload];
export const DEFAULT_WORKLOADS = ['short', 'ping', 'idle', 'bulk', 'accept'] as const;
