/**
 * Routing across the tiers of a `balance` pool when licenses decide it (SPEC 8.1): the pool hands it the usable
 * servers of every tier (the plain path only needs the lowest), and each new client goes to
 *
 * - the lowest tier, unless its usage of the pool's feature would go above `overflow.above` (the LM-X cross-site
 *   sharing threshold) or, with `balance: seats`, every server of it is FULL: then the next tier that takes it;
 *   when no tier does, the lowest one (its license server answers, as it would without the proxy);
 * - during a stepped failback (`failback.steps`), the recovered tier only for its step's share of new clients; the
 *   rest still go to the tier they were using. The share is kept exact per step (a running count, not a coin).
 *
 * Each tier has its own balancer, so round robin within a tier keeps its rhythm while clients spill over.
 */
import type { BalanceAlgorithm, OverflowConfig } from '../../config/proxy-config.ts';
import type { Balancer, PickContext } from '../balance/balancer-base.ts';
import { createBalancer } from '../balance/create-balancer.ts';
import type { SelectResult } from '../contracts.ts';
import type { Server } from '../server.ts';

export interface TierRouting {
  balance: BalanceAlgorithm;
  feature: string | null;
  overflow: OverflowConfig | null;
  steps: readonly number[];
  stepInterval: number;
}

interface Lane {
  tier: number;
  servers: Server[];
  balancer: Balancer;
}

/** A stepped failback in progress: `to` (the recovered tier) gets `steps[step]` of new clients, `from` the rest. */
interface Stepping {
  from: number;
  to: number;
  startedAt: number;
  step: number;
  /** Clients placed during this step, and how many of them went back to `from`. */
  sent: number;
  kept: number;
}

export interface SteppingSnapshot {
  from: number;
  to: number;
  /** Share of new clients the recovered tier gets now (0..1). */
  share: number;
  step: number;
  steps: number;
}

/** Whether routing needs more than the lowest usable tier (otherwise the pool's plain path serves). */
export function needsTierRouter(mode: string, r: TierRouting): boolean {
  return mode === 'balance' && (r.balance === 'seats' || r.overflow !== null || r.steps.length > 0);
}

export class TierRouter {
  #cfg: TierRouting;
  #lanes: Lane[] = [];
  #stepping: Stepping | null = null;

  constructor(cfg: TierRouting) {
    this.#cfg = cfg;
  }

  /** Reload: a changed algorithm or feature rebuilds the balancers at the next `rebuild`. */
  configure(cfg: TierRouting): void {
    const rebuild = cfg.balance !== this.#cfg.balance || cfg.feature !== this.#cfg.feature;
    this.#cfg = cfg;
    if (rebuild) this.#lanes = [];
    if (cfg.steps.length === 0) this.#stepping = null;
  }

  /** The usable servers changed: `usable` in (tier, declaration) order. A tier whose members are unchanged keeps its balancer. */
  rebuild(usable: readonly Server[]): void {
    const old = this.#lanes;
    const lanes: Lane[] = [];
    for (const s of usable) {
      let lane = lanes[lanes.length - 1];
      if (lane === undefined || lane.tier !== s.tier) {
        lane = { tier: s.tier, servers: [], balancer: null as unknown as Balancer };
        lanes.push(lane);
      }
      lane.servers.push(s);
    }
    for (const lane of lanes) {
      const prev = old.find((l) => l.tier === lane.tier);
      if (prev !== undefined && sameMembers(prev.servers, lane.servers)) {
        lane.balancer = prev.balancer;
      } else {
        lane.balancer = createBalancer(this.#cfg.balance, this.#cfg.feature);
        lane.balancer.reset(lane.servers);
      }
    }
    this.#lanes = lanes;
  }

  /** New clients moved back from tier `from` to the recovered tier `to`: step them back if steps are configured. */
  failedBack(from: number, to: number, now: number): void {
    this.#stepping = this.#cfg.steps.length > 0 ? { from, to, startedAt: now, step: -1, sent: 0, kept: 0 } : null;
  }

  /** New clients moved away (failover): a stepped failback in progress is over. */
  failedOver(): void {
    this.#stepping = null;
  }

  stepping(now: number): SteppingSnapshot | null {
    const st = this.#stepping;
    if (st === null) return null;
    const steps = this.#cfg.steps;
    const step = Math.floor((now - st.startedAt) / this.#cfg.stepInterval);
    if (step >= steps.length) return null;
    return { from: st.from, to: st.to, share: steps[step]!, step: step + 1, steps: steps.length };
  }

  balance(ctx: PickContext, now: number): SelectResult {
    const lanes = this.#lanes;
    if (lanes.length === 0) return null;
    const start = this.#stepping === null ? 0 : this.#stepStart(now);
    let at = start;
    for (let i = start; i < lanes.length; i++) {
      if (this.#takes(lanes[i]!)) {
        at = i;
        break;
      }
    }
    const lane = lanes[at]!;
    const s = lane.balancer.pick(lane.servers, ctx, now);
    if (s !== undefined) return s;
    // Every server of the chosen tier is at its connection limit or excluded (redispatch): another tier may do.
    for (const l of lanes) {
      if (l === lane) continue;
      const other = l.balancer.pick(l.servers, ctx, now);
      if (other !== undefined) return other;
    }
    const ex = ctx.exclude;
    if (ex === null) return 'full';
    for (const l of lanes) for (const x of l.servers) if (!ex.includes(x)) return 'full';
    return null;
  }

  /** Whether a tier takes new clients by licenses: under the overflow threshold and, by seats, not every server FULL. */
  #takes(lane: Lane): boolean {
    const { overflow, feature, balance } = this.#cfg;
    if (overflow !== null) {
      let issued = 0;
      let inUse = 0;
      for (const s of lane.servers) {
        const u = s.seatUsage(feature);
        if (u === null) continue;
        issued += u.issued;
        inUse += u.inUse;
      }
      // The client would take a seat: spill when that would carry the tier above the threshold, so a tier of 10
      // seats at 80% holds 8 (LM-X CROSS_SITE_SHARING_THRESHOLD). A tier that reported nothing is not judged.
      if (issued > 0 && inUse + 1 > overflow.above * issued) return false;
    }
    if (balance === 'seats') {
      for (const s of lane.servers) if (!s.seatFull) return true;
      return false;
    }
    return true;
  }

  /** The lane this client starts from during a stepped failback: the recovered tier for its share, else the old one. */
  #stepStart(now: number): number {
    const st = this.#stepping!;
    const steps = this.#cfg.steps;
    const lanes = this.#lanes;
    const step = Math.floor((now - st.startedAt) / this.#cfg.stepInterval);
    const from = lanes.findIndex((l) => l.tier === st.from);
    if (step >= steps.length || from < 0 || lanes[0]!.tier !== st.to) {
      // Over, or the tiers moved under it (the old tier went away, another failover): every client to the lowest.
      this.#stepping = null;
      return 0;
    }
    if (step !== st.step) {
      st.step = step;
      st.sent = 0;
      st.kept = 0;
    }
    const share = steps[step]!;
    st.sent++;
    const back = st.sent - st.kept - 1;
    // Bresenham: after `sent` clients, round(share * sent) of them went back.
    if (back < Math.floor(share * st.sent + 0.5)) return 0;
    st.kept++;
    return from;
  }
}

function sameMembers(a: readonly Server[], b: readonly Server[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
