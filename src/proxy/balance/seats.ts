/**
 * `balance: seats` (SPEC 8.1): the server with the most free seats of the pool's feature, as its last lmstat /
 * external check reported them less the seats given out since (the server's SeatLedger), times its weight. Ties
 * go round robin (the scan starts after the last pick). A server with 0 free seats is FULL: it is passed over
 * while any other candidate has a seat or has not reported yet. When every candidate looks full, the client is not
 * refused here (the license server answers, and may queue it): it goes where seats most likely came free since the
 * last check (connections that closed since), which is where a checkout has its best chance.
 */
import type { Server } from '../server.ts';
import { eligible, type Balancer, type PickContext } from './balancer-base.ts';

export class SeatsBalancer implements Balancer {
  readonly #feature: string | null;
  #next = 0;

  constructor(feature: string | null) {
    this.#feature = feature;
  }

  reset(_candidates: readonly Server[]): void {
    this.#next = 0;
  }

  pick(candidates: readonly Server[], ctx: PickContext, now: number): Server | undefined {
    const n = candidates.length;
    const feature = this.#feature;
    let best = -1;
    let bestScore = 0;
    let unknown = -1;
    let fallback = -1;
    let fallbackScore = 0;
    for (let k = 0; k < n; k++) {
      const i = (this.#next + k) % n;
      const s = candidates[i]!;
      if (!eligible(s, ctx.exclude)) continue;
      const free = s.freeSeatsOf(feature);
      if (free === null) {
        if (unknown < 0) unknown = i;
        continue;
      }
      const w = s.effectiveWeight(now);
      if (free > 0) {
        const score = free * w;
        if (best < 0 || score > bestScore) {
          best = i;
          bestScore = score;
        }
        continue;
      }
      const outlook = (s.seatOutlook(feature) ?? 0) * w;
      if (fallback < 0 || outlook > fallbackScore) {
        fallback = i;
        fallbackScore = outlook;
      }
    }
    const at = best >= 0 ? best : unknown >= 0 ? unknown : fallback;
    if (at < 0) return undefined;
    this.#next = (at + 1) % n;
    return candidates[at];
  }
}
