import pino, { type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Human-readable output via pino-pretty; default: when stdout is a TTY. */
  pretty?: boolean;
  name?: string;
  /**
   * Buffered output: lines leave in writes of 4 KiB, and at the latest every `flushMs` (and at exit). For a process
   * that logs a line per connection at thousands a second (the balancer): each write is a trip through libuv's
   * thread pool, measured at ~4% of the balancer's CPU on short transactions when every few lines make one.
   */
  flushMs?: number;
  /** Fields on every line besides `pid` (a cluster worker adds its slot number). */
  bindings?: Record<string, unknown>;
}

/**
 * One JSON line per event on stdout (pino). Components take a child logger bound once, so per-event cost stays
 * a level check when the level is off.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const pretty = opts.pretty ?? (process.stdout.isTTY === true && !process.env.CI);
  const base = { level: opts.level ?? 'info', name: opts.name, base: { pid: process.pid, ...opts.bindings } };
  if (pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  // Each write is whole lines and at most PIPE_BUF (4096) bytes, so the lines of several processes sharing one
  // stdout pipe (cluster workers) never interleave within a line.
  const batch = opts.flushMs ? { minLength: 3584, maxWrite: 4096, periodicFlush: opts.flushMs } : {};
  return pino(base, pino.destination({ dest: 1, sync: false, ...batch }));
}

/** A logger that writes nothing, for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
