/**
 * `feature_above`: the lmstat checks report each server's features in use / issued (the numbers /metrics shows as
 * licproxy_license_feature_used and _issued). Read once a second from the servers' last check results (no work on
 * the forwarding path); an alert fires when a feature reaches its threshold and re-arms once it is below again.
 */
import type { ProxyRuntime } from '../proxy/runtime.ts';

export interface FeatureUse {
  pool: string;
  server: string;
  feature: string;
  used: number;
  issued: number;
  /** When the check that read it ran. */
  at: number;
}

export const FEATURE_POLL_MS = 1_000;

/** Every (pool, server, feature) with seats issued, from the last check results. */
export function featureUse(runtime: ProxyRuntime): FeatureUse[] {
  const out: FeatureUse[] = [];
  for (const pc of runtime.config.pools) {
    const pool = runtime.pool(pc.name);
    if (!pool) continue;
    for (const s of pool.servers) {
      const check = s.lastCheck;
      if (!check?.ok || !check.features) continue;
      for (const f of check.features) {
        if (f.issued > 0) out.push({ pool: pc.name, server: s.name, feature: f.name, used: f.inUse, issued: f.issued, at: check.at });
      }
    }
  }
  return out;
}

/** Edge detection for one threshold: which (pool, server, feature) are at or above it now. */
export class ThresholdCrossing {
  readonly #share: number;
  #above = new Set<string>();

  constructor(share: number) {
    this.#share = share;
  }

  /** The uses that crossed the threshold since the last call. */
  crossed(uses: readonly FeatureUse[]): FeatureUse[] {
    const now = new Set<string>();
    const out: FeatureUse[] = [];
    for (const u of uses) {
      if (u.used / u.issued < this.#share) continue;
      const key = `${u.pool}\u0000${u.server}\u0000${u.feature}`;
      now.add(key);
      if (!this.#above.has(key)) out.push(u);
    }
    this.#above = now;
    return out;
  }
}
