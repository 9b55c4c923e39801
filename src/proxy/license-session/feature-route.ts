/**
 * Where a licd connection goes once its first CHECKOUT names the feature (SPEC 8.2 `route: feature`), and where a
 * denied checkout is tried again (`retry_denied`). The pool's own policy (tiers, mode, balance, weights,
 * capacity) decides among the servers that serve the feature; only when none of the pool's current candidates
 * serves it (the feature lives on a backup tier) is the choice made here, lowest tier first, fewest connections
 * per weight.
 */
import type { Pool, SelectContext, SelectResult } from '../pool.ts';
import type { Server } from '../server.ts';
import { featureKnowledge, freeSeats } from './feature-lookup.ts';

/** Whether `s` may take a new client now (in master mode, only the master). */
export function usable(pool: Pool, s: Server, now: number): boolean {
  return s.takesNewClients(now) && (pool.mode !== 'master' || s.isMaster);
}

/** `unknown`: no usable server serves the feature (answer UNKNOWN_FEATURE); else the pool's kind of answer. */
export function routeFeature(pool: Pool, ctx: SelectContext & { exclude: Server[] | null }, feature: string): SelectResult | 'unknown' {
  const now = Date.now();
  let serving = 0;
  let lacking: Server[] | null = null;
  let usableCount = 0;
  for (const s of pool.servers) {
    if (!usable(pool, s, now)) continue;
    usableCount++;
    if (featureKnowledge(s, feature) === 'lacks') (lacking ??= []).push(s);
    else serving++;
  }
  if (usableCount === 0) return pool.select(ctx); // no server at all: the pool's usual answer (queue or none)
  if (serving === 0) return 'unknown';
  // The servers that lack the feature stay excluded for this connection: a wait in the pool queue, a connect retry
  // or a redispatch then never lands on one of them either.
  if (lacking !== null) ctx.exclude = ctx.exclude === null ? lacking : [...ctx.exclude, ...lacking];
  const r = pool.select(ctx);
  if (r !== null) return r;
  return leastLoaded(pool, feature, ctx.exclude, now) ?? null;
}

/**
 * retry_denied: the next server to ask, among the usable ones that may serve `feature` and that this connection has
 * not tried yet; undefined when none is left. Every such server is asked in turn, whatever its seat estimate says:
 * the estimate (last check, less the connections placed since) lags the servers, and a server's own answer is the
 * truth, so skipping one the estimate shows full would deny a seat it may have (a false denial). The estimate only
 * orders the servers: lowest tier first, then the most free seats (a server whose checks say nothing counts as one
 * seat), then the fewest connections per weight.
 */
export function retryTarget(pool: Pool, feature: string, tried: readonly Server[]): Server | undefined {
  const now = Date.now();
  let best: Server | undefined;
  let bestFree = 0;
  for (const s of pool.servers) {
    if (!usable(pool, s, now) || s.isFull() || tried.includes(s)) continue;
    if (featureKnowledge(s, feature) === 'lacks') continue;
    const free = freeSeats(s, feature) ?? 1;
    if (
      best === undefined ||
      s.tier < best.tier ||
      (s.tier === best.tier && (free > bestFree || (free === bestFree && s.counters.cur * best.weight < best.counters.cur * s.weight)))
    ) {
      best = s;
      bestFree = free;
    }
  }
  return best;
}

function leastLoaded(pool: Pool, feature: string, exclude: readonly Server[] | null, now: number): Server | undefined {
  let best: Server | undefined;
  for (const s of pool.servers) {
    if (!usable(pool, s, now) || s.isFull() || (exclude !== null && exclude.includes(s))) continue;
    if (featureKnowledge(s, feature) === 'lacks') continue;
    if (best === undefined || s.tier < best.tier || (s.tier === best.tier && s.counters.cur * best.weight < best.counters.cur * s.weight)) best = s;
  }
  return best;
}
