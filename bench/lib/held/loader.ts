/**
 * A loader child of bench/held.ts: opens its share of the held license connections through the proxy and keeps
 * them alive with HEARTBEATs, so 30,000 client sockets are spread over processes that each stay under the
 * 20,000 fd limit. Each connection: connect, `HELLO`, `CHECKOUT <feature>` (one seat), then `HEARTBEAT` every
 * heartbeatMs, the first one at a random offset so the rounds are spread in time rather than in bursts.
 *
 * Callback-driven on raw sockets (no promise per line) so 10,000 connections cost little CPU here. Talks to the
 * parent over IPC only (messages.ts); a lost parent ends it, so a killed bench never leaves a loader behind.
 */
import { connect, type Socket } from 'node:net';
import type { FromLoader, LoaderReport, OpenRequest, ToLoader } from './messages.ts';

if (!process.send) {
  process.stderr.write('loader.ts runs as a child of bench/held.ts (needs an IPC channel)\n');
  process.exit(1);
}
const send = (m: FromLoader): void => void process.send!(m);

type Phase = 'connect' | 'hello' | 'checkout' | 'held' | 'closed';

interface Conn {
  socket: Socket;
  phase: Phase;
  key: string;
  server: string;
  buf: string;
  /** Date.now() of the outstanding heartbeat, 0 = none outstanding. */
  pendingSince: number;
  /** Whether the outstanding heartbeat was already counted late (count it once). */
  pendingLate: boolean;
  lastAnswerAt: number;
  heldAt: number;
  timer: NodeJS.Timeout | null;
  closing: boolean;
  /** Since the last mark: heartbeats answered late, and the longest wait for an answer (ms). */
  lateSinceMark: number;
  maxWaitSinceMark: number;
}

const conns = new Set<Conn>();
const totals = { held: 0, failed: 0, hbSent: 0, hbAnswered: 0, hbLate: 0, hbErrors: 0, closedByPeer: 0 };
let mark = { at: Date.now(), hbSent: 0, hbAnswered: 0, hbLate: 0, aliveAtMark: new Set<Conn>(), lost: [] as string[] };
const perServer: Record<string, number> = {};
const errorSamples: string[] = [];
let hbMs = 5_000;
let answerTimeoutMs = 10_000;
const SETUP_TIMEOUT_MS = 60_000;

function sample(text: string): void {
  if (errorSamples.length < 10) errorSamples.push(text);
}

function alive(): number {
  let n = 0;
  for (const c of conns) if (c.phase === 'held') n++;
  return n;
}

function report(): LoaderReport {
  const now = Date.now();
  let stillAlive = 0;
  let withoutAnswer = 0;
  for (const c of mark.aliveAtMark) {
    if (c.phase !== 'held') continue;
    stillAlive++;
    if (c.lastAnswerAt < mark.at) withoutAnswer++;
  }
  // A heartbeat outstanding past the timeout counts as late now, not only when (if ever) its answer arrives.
  let hbLateAlive = 0;
  let maxWaitAliveMs = 0;
  for (const c of conns) {
    if (c.phase !== 'held') continue;
    if (c.pendingSince && !c.pendingLate && now - c.pendingSince > answerTimeoutMs) countLate(c);
    hbLateAlive += c.lateSinceMark;
    const waiting = c.pendingSince ? now - Math.max(c.pendingSince, mark.at) : 0;
    maxWaitAliveMs = Math.max(maxWaitAliveMs, c.maxWaitSinceMark, waiting);
  }
  return {
    held: totals.held,
    failed: totals.failed,
    alive: alive(),
    hbSent: totals.hbSent,
    hbAnswered: totals.hbAnswered,
    hbLate: totals.hbLate,
    hbErrors: totals.hbErrors,
    closedByPeer: totals.closedByPeer,
    perServer: { ...perServer },
    sinceMark: {
      aliveAtMark: mark.aliveAtMark.size,
      stillAlive,
      withoutAnswer,
      hbSent: totals.hbSent - mark.hbSent,
      hbAnswered: totals.hbAnswered - mark.hbAnswered,
      hbLate: totals.hbLate - mark.hbLate,
      hbLateAlive,
      maxWaitAliveMs,
      lost: [...mark.lost],
    },
    errorSamples: [...errorSamples],
  };
}

function countLate(c: Conn): void {
  c.pendingLate = true;
  c.lateSinceMark++;
  totals.hbLate++;
}

function heartbeat(c: Conn): void {
  if (c.phase !== 'held') return;
  const now = Date.now();
  if (c.pendingSince) {
    // Still waiting for the previous answer: never pipeline, or a stuck connection would look busy and fine.
    if (!c.pendingLate && now - c.pendingSince > answerTimeoutMs) countLate(c);
    return;
  }
  c.pendingSince = now;
  c.pendingLate = false;
  totals.hbSent++;
  c.socket.write('HEARTBEAT\n');
}

function onLine(c: Conn, line: string, req: OpenRequest, settle: (ok: boolean, why?: string) => void): void {
  switch (c.phase) {
    case 'hello':
      if (!line.startsWith('OK')) return settle(false, `HELLO -> ${line.slice(0, 80)}`);
      c.server = /server=(\S+)/.exec(line)?.[1] ?? '?';
      c.phase = 'checkout';
      c.socket.write(`CHECKOUT ${req.feature}\n`);
      return;
    case 'checkout':
      if (!line.startsWith('GRANTED')) return settle(false, `CHECKOUT -> ${line.slice(0, 80)}`);
      return settle(true);
    case 'held':
      if (!c.pendingSince) {
        totals.hbErrors++;
        sample(`unsolicited line: ${line.slice(0, 80)}`);
        return;
      }
      if (line === 'OK') {
        totals.hbAnswered++;
        c.lastAnswerAt = Date.now();
        // The wait counted in this window starts at the mark at the earliest.
        c.maxWaitSinceMark = Math.max(c.maxWaitSinceMark, c.lastAnswerAt - Math.max(c.pendingSince, mark.at));
        if (!c.pendingLate && c.lastAnswerAt - c.pendingSince > answerTimeoutMs) countLate(c);
      } else {
        totals.hbErrors++;
        sample(`HEARTBEAT -> ${line.slice(0, 80)}`);
      }
      c.pendingSince = 0;
      c.pendingLate = false;
      return;
    default:
      return;
  }
}

/** Opens req.count connections with at most req.concurrency in setup at once; resolves when each is held or failed. */
function openBatch(req: OpenRequest): Promise<{ held: number; failed: number; ms: number }> {
  hbMs = req.heartbeatMs;
  answerTimeoutMs = req.answerTimeoutMs;
  const t0 = Date.now();
  let next = 0;
  let inflight = 0;
  let held = 0;
  let failed = 0;
  let lastProgress = 0;
  return new Promise((resolve) => {
    const pump = (): void => {
      while (inflight < req.concurrency && next < req.count) openOne(next++);
      if (inflight === 0 && next >= req.count) resolve({ held, failed, ms: Date.now() - t0 });
      else if (Date.now() - lastProgress > 1_000) {
        lastProgress = Date.now();
        send({ progress: { done: held + failed, of: req.count } });
      }
    };
    const openOne = (i: number): void => {
      inflight++;
      const socket = connect({ host: req.host, port: req.ports[i % req.ports.length]!, noDelay: true });
      const c: Conn = {
        socket, phase: 'connect', key: '', server: '', buf: '', pendingSince: 0, pendingLate: false,
        lastAnswerAt: 0, heldAt: 0, timer: null, closing: false, lateSinceMark: 0, maxWaitSinceMark: 0,
      };
      conns.add(c);
      let settled = false;
      // Opening is not what this measures, and a loaded machine can take seconds to answer one of thousands of
      // checkouts in flight: only a setup that never completes fails (the time to open them all is a figure).
      const setupMs = Math.max(SETUP_TIMEOUT_MS, req.answerTimeoutMs);
      const setupTimer = setTimeout(() => settle(false, `setup not done within ${setupMs}ms (${c.phase})`), setupMs);
      const settle = (ok: boolean, why?: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(setupTimer);
        inflight--;
        if (ok) {
          held++;
          totals.held++;
          c.phase = 'held';
          c.heldAt = Date.now();
          c.lastAnswerAt = c.heldAt;
          perServer[c.server] = (perServer[c.server] ?? 0) + 1;
          // First heartbeat at a random point of the period, then every period: rounds spread evenly in time.
          c.timer = setTimeout(() => {
            heartbeat(c);
            c.timer = setInterval(() => heartbeat(c), hbMs);
          }, Math.floor(Math.random() * hbMs));
        } else {
          failed++;
          totals.failed++;
          sample(why ?? 'failed');
          c.phase = 'closed';
          c.closing = true;
          conns.delete(c);
          socket.destroy();
        }
        setImmediate(pump);
      };
      socket.on('connect', () => {
        c.key = `${socket.remotePort}:${socket.localPort}`;
        c.phase = 'hello';
        socket.write(`HELLO user=${req.user} host=loader${process.pid}\n`);
      });
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        c.buf += chunk;
        let nl: number;
        while ((nl = c.buf.indexOf('\n')) >= 0) {
          const line = c.buf.slice(0, nl).replace(/\r$/, '');
          c.buf = c.buf.slice(nl + 1);
          onLine(c, line, req, settle);
        }
      });
      socket.on('error', (err) => {
        if (!settled) settle(false, `${c.phase}: ${err.message}`);
      });
      socket.on('close', () => {
        if (!settled) return settle(false, `${c.phase}: closed by peer`);
        if (c.phase === 'held' && !c.closing) {
          totals.closedByPeer++;
          mark.lost.push(c.key);
          perServer[c.server] = (perServer[c.server] ?? 1) - 1;
        }
        if (c.timer) clearInterval(c.timer);
        c.phase = 'closed';
        conns.delete(c);
      });
    };
    pump();
  });
}

async function closeAll(): Promise<void> {
  for (const c of conns) {
    c.closing = true;
    if (c.timer) clearInterval(c.timer);
    c.socket.destroy();
  }
  conns.clear();
}

process.on('message', (m: ToLoader) => {
  void (async () => {
    if ('open' in m) {
      send({ id: m.id, opened: await openBatch(m.open) });
    } else if ('mark' in m) {
      const aliveAtMark = new Set<Conn>();
      for (const c of conns) {
        c.lateSinceMark = 0;
        c.maxWaitSinceMark = 0;
        if (c.phase === 'held') aliveAtMark.add(c);
      }
      mark = { at: Date.now(), hbSent: totals.hbSent, hbAnswered: totals.hbAnswered, hbLate: totals.hbLate, aliveAtMark, lost: [] };
      send({ id: m.id, marked: true });
    } else if ('report' in m) {
      send({ id: m.id, report: report() });
    } else if ('close' in m) {
      await closeAll();
      send({ id: m.id, closed: true });
      process.disconnect();
    }
  })().catch((err: Error) => send({ id: (m as { id: number }).id, error: err.message }));
});
process.on('disconnect', () => process.exit(0));
send({ ready: true });
