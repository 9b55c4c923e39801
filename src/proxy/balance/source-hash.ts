/**
 * Source-address hashing by weighted rendezvous (highest random weight): each server scores
 * `weight / -ln(u)` with `u` a hash of (client IP, server name), and the highest score wins. The same IP lands on
 * the same server while the candidate set is unchanged; when a server leaves, only its clients move (unlike
 * `hash % n`), and each server's share is proportional to its weight. A full or excluded server is skipped, and
 * its clients go to their second-best server.
 */
import type { Server } from '../server.ts';
import { eligible, type Balancer, type PickContext } from './balancer-base.ts';

export class SourceHashBalancer implements Balancer {
  /** Hash of each candidate's name, so a server keeps its scores across reorders and reloads. */
  #seed: Uint32Array = new Uint32Array(0);

  reset(candidates: readonly Server[]): void {
    this.#seed = new Uint32Array(candidates.length);
    for (let i = 0; i < candidates.length; i++) this.#seed[i] = fnv1a(candidates[i]!.name);
  }

  pick(candidates: readonly Server[], ctx: PickContext, _now: number): Server | undefined {
    const key = fnv1a(ctx.clientIp);
    let best: Server | undefined;
    let bestScore = -1;
    for (let i = 0; i < candidates.length; i++) {
      const s = candidates[i]!;
      if (!eligible(s, ctx.exclude)) continue;
      // Configured weight, not the slow-start ramp: a ramp would move clients around while it runs.
      const u = (mix32(key ^ this.#seed[i]!) + 1) / 4294967297; // (0, 1)
      const score = s.weight / -Math.log(u);
      if (score > bestScore) {
        best = s;
        bestScore = score;
      }
    }
    return best;
  }
}

/** FNV-1a over UTF-16 code units: stable, allocation-free, good enough to feed `mix32`. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** MurmurHash3's finaliser: spreads FNV's weak low bits over the whole word. */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
