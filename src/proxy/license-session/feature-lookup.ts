/**
 * What a pool knows of a server's features (SPEC 8.2: "features: of the server, else its last check"): the
 * configured `features:` first, then the last lmstat / external check; seat counts come from the server's seat
 * estimate (its last check, less the seats this proxy placed since where the pool counts seats).
 */
import type { Server } from '../server.ts';

/** `unknown`: the server's checks report no features (tcp check, none yet), so it may serve anything. */
export type FeatureKnowledge = 'serves' | 'lacks' | 'unknown';

export function featureKnowledge(s: Server, feature: string): FeatureKnowledge {
  if (s.features.includes(feature)) return 'serves';
  const fs = s.lastCheck?.features;
  if (fs === undefined) return s.features.length > 0 ? 'lacks' : 'unknown';
  for (const f of fs) if (f.name === feature) return f.expired === true ? 'lacks' : 'serves';
  return 'lacks';
}

/** Free seats of `feature` at the last check (issued - in use); null when the checks do not say. */
export function freeSeats(s: Server, feature: string): number | null {
  if (s.lastCheck?.features === undefined) return null;
  return s.freeSeatsOf(feature);
}
