import type { BalanceAlgorithm } from '../../config/proxy-config.ts';
import type { Balancer } from './balancer-base.ts';
import { FirstBalancer } from './first.ts';
import { LeastConnBalancer } from './least-conn.ts';
import { RoundRobinBalancer } from './round-robin.ts';
import { SeatsBalancer } from './seats.ts';
import { SourceHashBalancer } from './source-hash.ts';

/** The `balance` keyword -> its algorithm; a new algorithm is a new file and one line here. */
/** `feature`: the pool's (SPEC 8), read by `seats`. */
export function createBalancer(algorithm: BalanceAlgorithm, feature: string | null = null): Balancer {
  switch (algorithm) {
    case 'roundrobin':
      return new RoundRobinBalancer();
    case 'leastconn':
      return new LeastConnBalancer();
    case 'source':
      return new SourceHashBalancer();
    case 'first':
      return new FirstBalancer();
    case 'seats':
      return new SeatsBalancer(feature);
  }
}
