/**
 * License-transaction load generator for licd and for licproxy in front of it.
 *
 *   node --import tsx bench/licload.ts --target 127.0.0.1:27101 --mode short --concurrency 50 --duration 5s
 *
 * Modes:
 *   short       each worker loops: connect, HELLO, CHECKOUT, CHECKIN, close (one transaction = the whole cycle)
 *   persistent  each of --concurrency connections says HELLO once, then loops --op heartbeat (HEARTBEAT -> OK)
 *               or --op checkout (CHECKOUT -> GRANTED, CHECKIN -> OK) back to back
 * Always bounded: stops at --duration or after --transactions, whichever comes first.
 *
 * Importable: `runLoad(options)` returns a LoadResult; `openIdle(target, n)` opens n connections that HELLO and
 * hold. The generator is callback-driven on raw sockets (no promise, no string split per answer line, latencies
 * into a preallocated histogram) so that it is not the bottleneck of what it measures.
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { parseHostPort, type HostPort } from '../src/common/address.ts';
import { parseDuration } from '../src/common/duration.ts';
import { Histogram, type LatencySummary } from './lib/histogram.ts';

export type LoadMode = 'short' | 'persistent';
export type PersistentOp = 'heartbeat' | 'checkout';

export interface LoadOptions {
  target: HostPort;
  mode: LoadMode;
  /** persistent mode only; default heartbeat. */
  op?: PersistentOp;
  /** Workers (short) or connections (persistent). Default 50. */
  concurrency?: number;
  /** Default 5000ms; never more than 10 minutes. */
  durationMs?: number;
  /** Stop after this many transactions. Default 10 million. */
  transactions?: number;
  feature?: string;
  user?: string;
  localAddress?: string;
  /** Answer timeout: a connection that waits longer counts an error and is dropped. Default 5000ms. */
  timeoutMs?: number;
}

export interface LoadResult {
  mode: LoadMode;
  op: string;
  target: string;
  concurrency: number;
  elapsedMs: number;
  transactions: number;
  denied: number;
  errors: number;
  txPerSec: number;
  /** Microseconds. */
  latencyUs: LatencySummary;
  /** The first few error texts, for the report. */
  errorSamples: string[];
}

const MAX_DURATION = 10 * 60_000;
const NL = 10;
const C_OK = 79; // O
const C_GRANTED = 71; // G
const C_DENIED = 68; // D
const C_QUEUED = 81; // Q
const HANDLE_KEY = Buffer.from('handle=');

type Phase = 'connect' | 'hello' | 'checkout' | 'checkin' | 'heartbeat' | 'stopped';

interface Shared {
  opts: Required<Omit<LoadOptions, 'localAddress'>> & { localAddress?: string };
  hist: Histogram;
  deadline: number;
  started: number;
  issued: number;
  done: number;
  denied: number;
  errors: number;
  errorSamples: string[];
  helloBuf: Buffer;
  checkoutBuf: Buffer;
  heartbeatBuf: Buffer;
  stopping: boolean;
  active: number;
  onIdle: () => void;
}

/**
 * One worker: a state machine over one socket at a time. Answers are read from the raw chunk by first byte; only
 * a GRANTED line is decoded, and only its handle.
 */
class Worker {
  readonly #s: Shared;
  readonly #persistent: boolean;
  #socket: Socket | undefined;
  #phase: Phase = 'connect';
  #t0 = 0;
  #carry: Buffer | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lastActivity = 0;

  constructor(shared: Shared) {
    this.#s = shared;
    this.#persistent = shared.opts.mode === 'persistent';
  }

  start(): void {
    this.#s.active++;
    this.#open();
    this.#timer = setInterval(() => this.#checkTimeout(), Math.min(1000, this.#s.opts.timeoutMs)).unref();
  }

  #claim(): boolean {
    const s = this.#s;
    if (s.stopping) return false;
    if (s.issued >= s.opts.transactions || performance.now() >= s.deadline) {
      s.stopping = true;
      return false;
    }
    s.issued++;
    return true;
  }

  #open(): void {
    if (!this.#persistent && !this.#claim()) return this.#finish();
    this.#t0 = performance.now();
    this.#lastActivity = this.#t0;
    this.#phase = 'connect';
    this.#carry = undefined;
    const o = this.#s.opts;
    const socket = connect({ host: o.target.host, port: o.target.port, ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
    socket.setNoDelay(true);
    this.#socket = socket;
    socket.on('connect', () => {
      this.#phase = 'hello';
      socket.write(this.#s.helloBuf);
    });
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => this.#fail(err.code ?? err.message));
    socket.on('close', () => {
      if (this.#socket === socket && this.#phase !== 'stopped') this.#fail(`closed by server during ${this.#phase}`);
    });
  }

  #onData(chunk: Buffer): void {
    let buf = chunk;
    if (this.#carry) {
      buf = Buffer.concat([this.#carry, chunk]);
      this.#carry = undefined;
    }
    let start = 0;
    let nl = buf.indexOf(NL, start);
    while (nl >= 0) {
      this.#onLine(buf, start, nl);
      if (this.#phase === 'stopped') return;
      start = nl + 1;
      nl = buf.indexOf(NL, start);
    }
    if (start < buf.length) this.#carry = Buffer.from(buf.subarray(start));
  }

  #onLine(buf: Buffer, start: number, end: number): void {
    const c = buf[start];
    const socket = this.#socket!;
    this.#lastActivity = performance.now();
    switch (this.#phase) {
      case 'hello':
        if (c !== C_OK) return this.#fail(`HELLO: ${text(buf, start, end)}`);
        if (this.#persistent) return this.#nextPersistent();
        this.#phase = 'checkout';
        socket.write(this.#s.checkoutBuf);
        return;
      case 'checkout': {
        if (c === C_GRANTED) {
          const handle = handleOf(buf, start, end);
          if (!handle) return this.#fail(`CHECKOUT: ${text(buf, start, end)}`);
          this.#phase = 'checkin';
          socket.write(`CHECKIN ${handle}\n`);
          return;
        }
        if (c === C_DENIED || c === C_QUEUED) {
          this.#s.denied++;
          return this.#persistent ? this.#nextPersistent() : this.#closeAndNext();
        }
        return this.#fail(`CHECKOUT: ${text(buf, start, end)}`);
      }
      case 'checkin':
        if (c !== C_OK) return this.#fail(`CHECKIN: ${text(buf, start, end)}`);
        this.#record();
        return this.#persistent ? this.#nextPersistent() : this.#closeAndNext();
      case 'heartbeat':
        if (c !== C_OK) return this.#fail(`HEARTBEAT: ${text(buf, start, end)}`);
        this.#record();
        return this.#nextPersistent();
      default:
        return;
    }
  }

  #record(): void {
    this.#s.hist.record(Math.round((performance.now() - this.#t0) * 1000));
    this.#s.done++;
  }

  #nextPersistent(): void {
    if (!this.#claim()) return this.#finish();
    this.#t0 = performance.now();
    if (this.#s.opts.op === 'heartbeat') {
      this.#phase = 'heartbeat';
      this.#socket!.write(this.#s.heartbeatBuf);
    } else {
      this.#phase = 'checkout';
      this.#socket!.write(this.#s.checkoutBuf);
    }
  }

  #closeAndNext(): void {
    this.#detach();
    this.#open();
  }

  /** Ends the current socket cleanly without it counting as an error. */
  #detach(): void {
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket) {
      socket.removeAllListeners('data');
      socket.removeAllListeners('close');
      socket.on('error', () => {});
      // FIN after the last write, then release the fd at once: no waiting for the server's FIN.
      socket.destroySoon();
    }
  }

  #fail(why: string): void {
    if (this.#phase === 'stopped') return;
    const s = this.#s;
    s.errors++;
    if (s.errorSamples.length < 5 && !s.errorSamples.includes(why)) s.errorSamples.push(why);
    this.#detach();
    if (this.#persistent) {
      // A broken persistent connection is not replaced: the run measures a fixed connection count.
      return this.#finish();
    }
    // Do not spin hot against a dead target: the next attempt waits a little.
    setTimeout(() => this.#open(), 5).unref();
  }

  #checkTimeout(): void {
    if (this.#phase === 'stopped' || !this.#socket) return;
    if (performance.now() - this.#lastActivity > this.#s.opts.timeoutMs) {
      this.#fail(`no answer within ${this.#s.opts.timeoutMs}ms during ${this.#phase}`);
    }
  }

  #finish(): void {
    if (this.#phase === 'stopped') return;
    this.#phase = 'stopped';
    if (this.#timer) clearInterval(this.#timer);
    this.#detach();
    if (--this.#s.active === 0) this.#s.onIdle();
  }

  /** Stops at the deadline even when an answer never comes. */
  forceStop(): void {
    if (this.#phase !== 'stopped') {
      if (this.#socket) this.#socket.destroy();
      this.#socket = undefined;
      this.#finish();
    }
  }
}

function handleOf(buf: Buffer, start: number, end: number): string | undefined {
  const at = buf.indexOf(HANDLE_KEY, start);
  if (at < 0 || at >= end) return undefined;
  const from = at + HANDLE_KEY.length;
  let to = from;
  while (to < end && buf[to] !== 32 && buf[to] !== 13) to++;
  return to > from ? buf.toString('latin1', from, to) : undefined;
}

function text(buf: Buffer, start: number, end: number): string {
  return buf.toString('utf8', start, Math.min(end, start + 120)).trim();
}

/** Runs one load and resolves with its figures. */
export function runLoad(options: LoadOptions): Promise<LoadResult> {
  const opts = {
    op: 'heartbeat' as PersistentOp,
    concurrency: 50,
    durationMs: 5000,
    transactions: 10_000_000,
    feature: 'LS-DYNA',
    user: 'licload',
    timeoutMs: 5000,
    ...options,
  };
  opts.durationMs = Math.min(Math.max(1, opts.durationMs), MAX_DURATION);
  opts.concurrency = Math.max(1, Math.floor(opts.concurrency));
  opts.transactions = Math.max(1, Math.floor(opts.transactions));
  return new Promise((resolve) => {
    const started = performance.now();
    const shared: Shared = {
      opts,
      hist: new Histogram(),
      started,
      deadline: started + opts.durationMs,
      issued: 0,
      done: 0,
      denied: 0,
      errors: 0,
      errorSamples: [],
      helloBuf: Buffer.from(`HELLO user=${opts.user} host=licload\n`),
      checkoutBuf: Buffer.from(`CHECKOUT ${opts.feature}\n`),
      heartbeatBuf: Buffer.from('HEARTBEAT\n'),
      stopping: false,
      active: 0,
      onIdle: () => finish(),
    };
    const workers: Worker[] = [];
    let finished = false;
    const hardStop = setTimeout(() => {
      shared.stopping = true;
      for (const w of workers) w.forceStop();
    }, opts.durationMs + opts.timeoutMs + 1000);
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(hardStop);
      const elapsedMs = performance.now() - started;
      resolve({
        mode: opts.mode,
        op: opts.mode === 'short' ? 'connect+hello+checkout+checkin' : opts.op,
        target: `${opts.target.host}:${opts.target.port}`,
        concurrency: opts.concurrency,
        elapsedMs: Math.round(elapsedMs),
        transactions: shared.done,
        denied: shared.denied,
        errors: shared.errors,
        txPerSec: Math.round((shared.done / elapsedMs) * 1000),
        latencyUs: shared.hist.summary(),
        errorSamples: shared.errorSamples,
      });
    };
    for (let i = 0; i < opts.concurrency; i++) workers.push(new Worker(shared));
    // Persistent connections say HELLO before the clock matters; the deadline still bounds the set-up.
    for (const w of workers) w.start();
  });
}

export interface IdleSet {
  /** Connections that answered HELLO (and CHECKOUT, when asked). */
  readonly open: number;
  readonly failed: number;
  close(): Promise<void>;
}

/**
 * Opens `n` connections that HELLO (and optionally check out `feature`) and then hold, idle, until `close()`.
 * Opens at most `batch` at a time so the listen backlog does not overflow. Bounded by `timeoutMs` overall.
 */
export async function openIdle(
  target: HostPort,
  n: number,
  opts: { feature?: string; user?: string; localAddress?: string; batch?: number; timeoutMs?: number } = {},
): Promise<IdleSet> {
  const sockets: Socket[] = [];
  let failed = 0;
  const batch = Math.max(1, opts.batch ?? 200);
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  const openOne = () =>
    new Promise<void>((resolve) => {
      const socket = connect({ host: target.host, port: target.port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
      let need = opts.feature ? 2 : 1;
      let got = '';
      const timer = setTimeout(() => fail(), Math.max(1, deadline - Date.now()));
      const fail = () => {
        clearTimeout(timer);
        failed++;
        socket.destroy();
        resolve();
      };
      socket.setEncoding('latin1');
      socket.on('error', fail);
      socket.on('connect', () => {
        socket.write(`HELLO user=${opts.user ?? 'idle'} host=licload\n` + (opts.feature ? `CHECKOUT ${opts.feature}\n` : ''));
      });
      socket.on('data', (d: string) => {
        got += d;
        let nl: number;
        while (need > 0 && (nl = got.indexOf('\n')) >= 0) {
          const line = got.slice(0, nl);
          got = got.slice(nl + 1);
          if (!(line.startsWith('OK') || line.startsWith('GRANTED'))) return fail();
          need--;
        }
        if (need === 0) {
          clearTimeout(timer);
          socket.removeAllListeners('data');
          socket.removeListener('error', fail);
          socket.on('error', () => {});
          sockets.push(socket);
          resolve();
        }
      });
    });
  for (let i = 0; i < n && Date.now() < deadline; i += batch) {
    const round: Promise<void>[] = [];
    for (let j = i; j < Math.min(n, i + batch); j++) round.push(openOne());
    await Promise.all(round);
  }
  return {
    get open() {
      return sockets.filter((s) => !s.destroyed).length;
    },
    failed,
    close: async () => {
      await Promise.all(
        sockets.map(
          (s) =>
            new Promise<void>((resolve) => {
              if (s.destroyed) return resolve();
              s.once('close', () => resolve());
              s.end();
              setTimeout(() => s.destroy(), 2000).unref();
            }),
        ),
      );
    },
  };
}

export function formatResult(r: LoadResult): string {
  const ms = (us: number) => (us / 1000).toFixed(us < 10_000 ? 3 : 1);
  const l = r.latencyUs;
  return [
    `licload ${r.mode} (${r.op}) -> ${r.target}, concurrency ${r.concurrency}, ${(r.elapsedMs / 1000).toFixed(1)}s`,
    `  ${r.transactions} transactions, ${r.txPerSec} tx/s, ${r.denied} denied, ${r.errors} errors`,
    `  latency ms: p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  p99 ${ms(l.p99)}  p99.9 ${ms(l.p999)}  max ${ms(l.max)}  mean ${ms(l.mean)}`,
    ...(r.errorSamples.length ? [`  errors: ${r.errorSamples.join('; ')}`] : []),
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        target: { type: 'string', short: 't' },
        mode: { type: 'string', short: 'm', default: 'short' },
        op: { type: 'string', default: 'heartbeat' },
        concurrency: { type: 'string', short: 'c', default: '50' },
        duration: { type: 'string', short: 'd', default: '5s' },
        transactions: { type: 'string', short: 'n' },
        feature: { type: 'string', short: 'f', default: 'LS-DYNA' },
        timeout: { type: 'string', default: '5s' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`licload: ${(err as Error).message}\n`);
    return 1;
  }
  if (values.help) {
    process.stdout.write(
      'usage: licload --target host:port [--mode short|persistent] [--op heartbeat|checkout] [--concurrency n]\n' +
        '               [--duration 5s] [--transactions n] [--feature F] [--timeout 5s] [--json]\n',
    );
    return 0;
  }
  const usage = (msg: string) => {
    process.stderr.write(`licload: ${msg}\n`);
    return 1;
  };
  if (!values.target) return usage('--target host:port is required');
  const target = parseHostPort(values.target);
  if (typeof target === 'string') return usage(`--target: ${target}`);
  if (values.mode !== 'short' && values.mode !== 'persistent') return usage(`--mode must be short or persistent, got "${values.mode}"`);
  if (values.op !== 'heartbeat' && values.op !== 'checkout') return usage(`--op must be heartbeat or checkout, got "${values.op}"`);
  const durationMs = parseDuration(values.duration!);
  if (durationMs === undefined || durationMs < 1 || durationMs > MAX_DURATION) return usage(`--duration expects 1ms..10m with a unit, got "${values.duration}"`);
  const timeoutMs = parseDuration(values.timeout!);
  if (timeoutMs === undefined || timeoutMs < 1) return usage(`--timeout expects a duration with a unit, got "${values.timeout}"`);
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 20_000) return usage(`--concurrency must be 1..20000, got "${values.concurrency}"`);
  const transactions = values.transactions === undefined ? undefined : Number(values.transactions);
  if (transactions !== undefined && (!Number.isInteger(transactions) || transactions < 1)) return usage(`--transactions must be a whole number >= 1`);

  const result = await runLoad({
    target,
    mode: values.mode,
    op: values.op,
    concurrency,
    durationMs,
    timeoutMs,
    feature: values.feature!,
    ...(transactions !== undefined ? { transactions } : {}),
  });
  process.stdout.write((values.json ? JSON.stringify(result) : formatResult(result)) + '\n');
  return result.transactions > 0 ? 0 : 2;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
