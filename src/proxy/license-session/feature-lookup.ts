/**
 * What a pool knows of a server's features, from the server's last lmstat / external check (SPEC 8.2: "features:
 * of the server, else its last check").
 *
 * At merge: the routing work owns `servers[].features` and `Server.serves(feature)` / `Server.freeSeatsOf(feature)`;
 * these two functions are the only readers here and should then call those (configured features first).
 */
import type { Server } from '../server.ts';

/** `unknown`: the server's checks report no features (tcp check, none yet), so it may serve anything. */
export type FeatureKnowledge = 'serves' | 'lacks' | 'unknown';

export function featureKnowledge(s: Server, feature: string): FeatureKnowledge {
  const fs = s.lastCheck?.features;
  if (fs === undefined) return 'unknown';
  for (const f of fs) if (f.name === feature) return f.expired === true ? 'lacks' : 'serves';
  return 'lacks';
}

/** Free seats of `feature` at the last check (issued - in use); null when the checks do not say. */
export function freeSeats(s: Server, feature: string): number | null {
  const fs = s.lastCheck?.features;
  if (fs === undefined) return null;
  for (const f of fs) if (f.name === feature) return f.expired === true ? 0 : Math.max(0, f.issued - f.inUse);
  return 0;
}
