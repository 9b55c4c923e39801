/**
 * HAProxy's `balance first`: the first server in declaration order that has a free slot takes the client, so
 * load packs onto as few servers as `max_connections` allows (the rest can be kept idle or powered down).
 */
import type { Server } from '../server.ts';
import { eligible, type Balancer, type PickContext } from './balancer-base.ts';

export class FirstBalancer implements Balancer {
  reset(_candidates: readonly Server[]): void {}

  pick(candidates: readonly Server[], ctx: PickContext, _now: number): Server | undefined {
    for (let i = 0; i < candidates.length; i++) {
      const s = candidates[i]!;
      if (eligible(s, ctx.exclude)) return s;
    }
    return undefined;
  }
}
