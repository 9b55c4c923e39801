/**
 * Weighted least connections: the server with the fewest current connections per unit of weight. Ties go round
 * robin (the scan starts after the last pick), so equal servers share new clients evenly even when connections
 * are short and `cur` is often 0 everywhere.
 */
import type { Server } from '../server.ts';
import { eligible, type Balancer, type PickContext } from './balancer-base.ts';

export class LeastConnBalancer implements Balancer {
  #next = 0;

  reset(_candidates: readonly Server[]): void {
    this.#next = 0;
  }

  pick(candidates: readonly Server[], ctx: PickContext, now: number): Server | undefined {
    const n = candidates.length;
    let best: Server | undefined;
    let bestAt = 0;
    let bestCur = 0;
    let bestW = 1;
    for (let k = 0; k < n; k++) {
      const i = (this.#next + k) % n;
      const s = candidates[i]!;
      if (!eligible(s, ctx.exclude)) continue;
      const cur = s.counters.cur;
      const w = s.effectiveWeight(now);
      // cur/w < bestCur/bestW without dividing
      if (best === undefined || cur * bestW < bestCur * w) {
        best = s;
        bestAt = i;
        bestCur = cur;
        bestW = w;
      }
    }
    if (best !== undefined) this.#next = (bestAt + 1) % n;
    return best;
  }
}
