/**
 * Smooth weighted round robin (nginx `ngx_http_upstream_get_peer`): every pick adds each server's weight to its
 * running score, takes the highest and subtracts the total from it. Weights 5/1/1 give `a a b a c a a`: the
 * heavy server's turns are spread out instead of bunched, and shares are exact over one cycle. Effective weights
 * are read at pick time, so a slow-start ramp needs no recomputation.
 */
import type { Server } from '../server.ts';
import { eligible, type Balancer, type PickContext } from './balancer-base.ts';

export class RoundRobinBalancer implements Balancer {
  #score: Float64Array = new Float64Array(0);

  reset(candidates: readonly Server[]): void {
    this.#score = new Float64Array(candidates.length);
  }

  pick(candidates: readonly Server[], ctx: PickContext, now: number): Server | undefined {
    const score = this.#score;
    let total = 0;
    let best = -1;
    for (let i = 0; i < candidates.length; i++) {
      const s = candidates[i]!;
      if (!eligible(s, ctx.exclude)) continue;
      const w = s.effectiveWeight(now);
      score[i]! += w;
      total += w;
      if (best < 0 || score[i]! > score[best]!) best = i;
    }
    if (best < 0) return undefined;
    score[best]! -= total;
    return candidates[best];
  }
}
