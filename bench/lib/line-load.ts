/**
 * The load of bench/light-upstream.ts, as in the harness: `CHECKOUT x\n` answered by `OK h123\n`.
 *
 * - short: `concurrency` clients each loop connect, request, answer, close (one op = the whole cycle);
 * - persistent: `concurrency` connections each send the request again as soon as the answer is read.
 *
 * Runs a warm-up, then calls `onWindow('start')`, counts the ops completed in the window, calls `onWindow('end')`
 * and stops every client. Bounded by the window and by `maxOps`. Callback-driven, one 'data' listener per socket,
 * no string work per answer, so that the generator is not what is measured.
 */
import { connect, type Socket } from 'node:net';

export type LineMode = 'short' | 'persistent';

export interface LineLoadOptions {
  host: string;
  port: number;
  mode: LineMode;
  concurrency: number;
  warmupMs: number;
  windowMs: number;
  /** Called at the start and end of the measured window (the bench reads the proxy's CPU there). */
  onWindow(edge: 'start' | 'end'): void;
  maxOps?: number;
}

export interface LineLoadResult {
  ops: number;
  errors: number;
  seconds: number;
  errorSample: string | null;
}

const REQUEST = Buffer.from('CHECKOUT x\n');
const NL = 10;

export function runLineLoad(o: LineLoadOptions): Promise<LineLoadResult> {
  const maxOps = o.maxOps ?? 50_000_000;
  let counting = false;
  let stopped = false;
  let ops = 0;
  let errors = 0;
  let errorSample: string | null = null;
  let windowStart = 0;
  const live = new Set<Socket>();

  const fail = (err: Error): void => {
    if (stopped) return;
    errors++;
    errorSample ??= err.message;
  };

  const done = (): void => {
    if (counting && ++ops >= maxOps) stopped = true;
  };

  function shortClient(): void {
    if (stopped) return;
    const s = connect({ host: o.host, port: o.port, noDelay: true });
    live.add(s);
    let answered = false;
    s.on('connect', () => s.write(REQUEST));
    s.on('data', (d: Buffer) => {
      if (answered || d.indexOf(NL) < 0) return;
      answered = true;
      done();
      s.end();
    });
    s.on('error', fail);
    s.on('close', () => {
      live.delete(s);
      if (!answered) fail(new Error('closed before the answer'));
      setImmediate(shortClient);
    });
  }

  function persistentClient(): void {
    if (stopped) return;
    const s = connect({ host: o.host, port: o.port, noDelay: true });
    live.add(s);
    s.on('connect', () => s.write(REQUEST));
    s.on('data', (d: Buffer) => {
      // One request in flight: an answer is complete when its newline arrived.
      if (d.indexOf(NL) < 0) return;
      done();
      if (!stopped) s.write(REQUEST);
    });
    s.on('error', fail);
    s.on('close', () => {
      live.delete(s);
      if (!stopped) {
        fail(new Error('persistent connection closed'));
        setTimeout(persistentClient, 100);
      }
    });
  }

  const start = o.mode === 'short' ? shortClient : persistentClient;
  for (let i = 0; i < o.concurrency; i++) start();

  return new Promise((resolve) => {
    setTimeout(() => {
      o.onWindow('start');
      windowStart = performance.now();
      counting = true;
      errors = 0;
      errorSample = null;
      setTimeout(() => {
        counting = false;
        stopped = true;
        o.onWindow('end');
        const seconds = (performance.now() - windowStart) / 1000;
        for (const s of live) s.destroy();
        live.clear();
        resolve({ ops, errors, seconds, errorSample });
      }, o.windowMs);
    }, o.warmupMs);
  });
}
