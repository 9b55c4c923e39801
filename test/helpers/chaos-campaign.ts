/**
 * The fault campaign of issue 14 against a licd triad, shared by a short test (test/failover/stranded-seats.test.ts)
 * and the 90 s bench (bench/chaos.ts):
 *
 *   const result = await runCampaign({ set, port, held: 200, streams: 8, durationMs: 90_000, faultEveryMs: 5_000 });
 *
 * `held` clients check out one seat each and keep it (client library with resume on, heartbeats), a stream of short
 * checkouts (`streams` loops: connect, HELLO, CHECKOUT, then CHECKIN or just close, half each) runs beside them, and
 * every `faultEveryMs` the master is SIGKILLed (restarted a moment later) or SIGSTOPped (continued after 4 peer
 * heartbeats), alternately. Then every member runs again, every client goes, and the campaign polls every member's
 * STATUS until no seat is in use anywhere (bounded by `drainTimeoutMs`). Every loop is bounded in time.
 */
import { LicenseClient, type ResumeResult } from '../../src/client/license-client.ts';
import { LicenseError } from '../../src/client/client-errors.ts';
import type { Forwarder, LicdCluster } from './licd-cluster.ts';

export interface CampaignOptions {
  set: LicdCluster;
  /** Where every client connects: a balancer, or a Forwarder following the master. */
  port: number;
  held: number;
  /** Concurrent loops of short checkouts. */
  streams: number;
  durationMs: number;
  faultEveryMs: number;
  /**
   * The campaign goes on past `durationMs` until the master was faulted this many times (a loaded machine stretches
   * each fault's restart and election), up to 3 times `durationMs`. Default 0.
   */
  minFaults?: number;
  /** Peer heartbeat of the set (ms): a SIGSTOP lasts 4 of them, so the others notice. */
  heartbeatMs: number;
  feature?: string;
  /** Answer timeout of one short checkout. Default 2s. */
  clientTimeout?: number;
  /** How long to wait, once every client is gone, for every member to count 0 seats. */
  drainTimeoutMs: number;
  /** The feature's count: STATUS is sampled every 250 ms during the run for a member counting more. */
  count?: number;
  log?: (line: string) => void;
}

export interface CampaignResult {
  faults: string[];
  held: number;
  /** Held clients that no longer hold their seat at the end (lost on resume, or gave up). */
  heldLost: number;
  /** Why held clients lost their seat: `UNKNOWN_HANDLE` (a RESUME answered so), `gave up: <code>`, `still resuming`. */
  heldLostWhy: Record<string, number>;
  shortOk: number;
  shortFailed: number;
  /** Failed short checkouts by error code. */
  failures: Record<string, number>;
  /** Longest stretch with no successful short checkout, ms. */
  longestGapMs: number;
  /** ResumeResult.gap of every resume of a held client (disconnect to last RESUME answer), ms. */
  resumeMs: number[];
  /** Seats in use on each member when every client had gone, then when the drain ended. */
  inUseAtEnd: number[];
  inUseAfterDrain: number[];
  /** From the last client gone to 0 seats everywhere, ms; null when the drain timed out. */
  drainMs: number | null;
  /** Highest seats in use seen on a member reporting (MASTER), and samples where a member counted above `count`. */
  maxOnMaster: number;
  overCount: string[];
  /** Date.now() of every successful short checkout, in order (the bench's gap breakdown reads them). */
  successAt: number[];
  /** Date.now() of every fault, with its kind and the member it hit. */
  faultAt: Array<{ at: number; kind: 'SIGKILL' | 'SIGSTOP'; member: string }>;
  /** Date.now() when the short stream started. */
  startedAt: number;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Points `fwd` at the member that reports (MASTER), polling every `everyMs`; returns a stop function. */
export function followMaster(set: LicdCluster, fwd: Forwarder, everyMs = 100): () => Promise<void> {
  let running = true;
  const loop = (async () => {
    while (running) {
      const all = await set.statuses(everyMs * 5);
      const m = all.findIndex((s) => s?.master);
      if (m >= 0) fwd.target = set.members[m]!.ports.license;
      await pause(everyMs);
    }
  })();
  return async () => {
    running = false;
    await loop;
  };
}

function seatsInUse(s: { features: Array<{ kind: string; inUse: number }> } | null): number {
  return s ? s.features.reduce((n, f) => n + f.inUse, 0) : -1;
}

export async function runCampaign(o: CampaignOptions): Promise<CampaignResult> {
  const feature = o.feature ?? 'LS-DYNA';
  const log = o.log ?? (() => {});
  const { set } = o;
  const result: CampaignResult = {
    faults: [],
    held: o.held,
    heldLost: 0,
    heldLostWhy: {},
    shortOk: 0,
    shortFailed: 0,
    failures: {},
    longestGapMs: 0,
    resumeMs: [],
    inUseAtEnd: [],
    inUseAfterDrain: [],
    drainMs: null,
    maxOnMaster: 0,
    overCount: [],
    successAt: [],
    faultAt: [],
    startedAt: 0,
  };

  const why = (k: string) => void (result.heldLostWhy[k] = (result.heldLostWhy[k] ?? 0) + 1);
  // Set again when the short stream starts; until then resumes are timed from here.
  let started = Date.now();
  // Held clients, opened a few at a time.
  const holders: LicenseClient[] = [];
  for (let i = 0; i < o.held; i += 20) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(20, o.held - i) }, async (_, k) => {
        const c = await LicenseClient.connect('127.0.0.1', o.port, { timeout: 5_000 });
        c.on('resumed', (r: ResumeResult) => {
          result.resumeMs.push(r.gap);
          for (const l of r.lost) why(`${l.code} at ${((Date.now() - started) / 1000).toFixed(1)}s`);
        });
        c.on('lost', (err: LicenseError) => why(`gave up: ${err.code}`));
        await c.hello('held', `h${i + k}`);
        await c.checkout(feature);
        c.startHeartbeat(5_000, () => {});
        return c;
      }),
    );
    holders.push(...batch);
  }
  log(`${holders.length} held`);

  // The stream of short checkouts.
  started = Date.now();
  result.startedAt = started;
  const endAt = started + o.durationMs;
  const hardEnd = started + 3 * o.durationMs;
  const minFaults = o.minFaults ?? 0;
  let faultsDone = false;
  /** Streams and sampler run until the planned end and the last fault, bounded. */
  const running = () => Date.now() < hardEnd && (Date.now() < endAt || !faultsDone);
  const successes: number[] = [started];
  const shortClients = new Set<LicenseClient>();
  const timeout = o.clientTimeout ?? 2_000;
  const shortOnce = async (n: number): Promise<void> => {
    let c: LicenseClient | undefined;
    try {
      c = await LicenseClient.connect('127.0.0.1', o.port, { resume: false, timeout });
      shortClients.add(c);
      await c.hello('short', `s${n % 1000}`);
      const g = await c.checkout(feature);
      result.shortOk++;
      successes.push(Date.now());
      if (n % 2 === 0) await c.checkin(g.handle).catch(() => {});
    } catch (err) {
      result.shortFailed++;
      const code = err instanceof LicenseError ? err.code : 'ERROR';
      result.failures[code] = (result.failures[code] ?? 0) + 1;
      await pause(50);
    } finally {
      if (c) {
        shortClients.delete(c);
        c.destroy();
      }
    }
  };
  const streams = Array.from({ length: o.streams }, async (_, s) => {
    for (let n = s; running(); n += o.streams) await shortOnce(n);
  });

  // Faults on the master, alternately SIGKILL (restart soon after) and SIGSTOP (continue after 4 heartbeats).
  const faults = (async () => {
    let kill = true;
    while (Date.now() + o.faultEveryMs < (result.faults.length < minFaults ? hardEnd : endAt)) {
      await pause(o.faultEveryMs);
      let m: number;
      try {
        m = await set.waitMaster({ timeout: 10_000 });
      } catch {
        log('no master to fault');
        continue;
      }
      const at = ((Date.now() - started) / 1000).toFixed(1);
      result.faultAt.push({ at: Date.now(), kind: kill ? 'SIGKILL' : 'SIGSTOP', member: set.members[m]!.name });
      if (kill) {
        result.faults.push(`${at}s SIGKILL ${set.members[m]!.name}`);
        await set.kill(m);
        await pause(1_000);
        await set.restart(m);
      } else {
        result.faults.push(`${at}s SIGSTOP ${set.members[m]!.name}`);
        set.stop(m);
        await pause(4 * o.heartbeatMs);
        set.cont(m);
      }
      log(result.faults.at(-1)!);
      kill = !kill;
    }
    faultsDone = true;
  })();
  const sampler = (async () => {
    while (running()) {
      const all = await set.statuses(500);
      all.forEach((st, i) => {
        const n = seatsInUse(st);
        if (st?.master) result.maxOnMaster = Math.max(result.maxOnMaster, n);
        if (o.count !== undefined && n > o.count && result.overCount.length < 20) {
          result.overCount.push(`${((Date.now() - started) / 1000).toFixed(1)}s ${set.members[i]!.name} ${st!.redundancy?.role}${st!.master ? ' (MASTER)' : ''}: ${n}`);
        }
      });
      await pause(250);
    }
  })();
  await Promise.all([...streams, faults, sampler]);
  result.successAt = successes.slice(1);
  successes.push(Date.now());
  for (let i = 1; i < successes.length; i++) result.longestGapMs = Math.max(result.longestGapMs, successes[i]! - successes[i - 1]!);

  // Every member runs; held clients settle (resumed or given up), bounded.
  for (let i = 0; i < set.size; i++) if (set.members[i]!.state === 'stopped') set.cont(i);
  for (let i = 0; i < set.size; i++) if (set.members[i]!.state === 'dead') await set.restart(i);
  const settleUntil = Date.now() + 20_000;
  while (Date.now() < settleUntil && holders.some((c) => c.resuming)) await pause(100);
  result.heldLost = holders.filter((c) => c.handles.length === 0 || c.resuming).length;
  for (const c of holders) if (c.resuming) why('still resuming');

  // Every client goes.
  for (const c of holders) c.destroy();
  for (const c of shortClients) c.destroy();
  const gone = Date.now();
  result.inUseAtEnd = (await set.statuses()).map(seatsInUse);
  log(`clients gone; seats in use per member: ${result.inUseAtEnd.join(' ')}`);
  const drainUntil = gone + o.drainTimeoutMs;
  while (Date.now() < drainUntil) {
    const now = (await set.statuses()).map(seatsInUse);
    result.inUseAfterDrain = now;
    if (now.every((n) => n === 0)) {
      result.drainMs = Date.now() - gone;
      break;
    }
    await pause(200);
  }
  return result;
}
