import type { AffinityConfig } from '../../config/proxy-config.ts';
import { HandleAffinity } from './handle-affinity.ts';
import type { AffinityHost } from '../contracts.ts';
import { SourceAffinity } from './source-affinity.ts';

/** The pool's affinity for `by`, or null for `none` (the pool then balances without any lookup). */
export function createAffinity(config: AffinityConfig, host: AffinityHost): SourceAffinity | HandleAffinity | null {
  switch (config.by) {
    case 'none':
      return null;
    case 'source':
      return new SourceAffinity(config, host);
    case 'handle':
      return new HandleAffinity(config, host);
  }
}
