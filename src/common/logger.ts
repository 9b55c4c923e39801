import pino, { type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Human-readable output via pino-pretty; default: when stdout is a TTY. */
  pretty?: boolean;
  name?: string;
  /**
   * Buffered output: lines leave in writes of BATCH_CHARS, and at the latest every `flushMs` (and at exit). For a
   * process that logs a line per connection at thousands a second (the balancer): each write is a trip through
   * libuv's thread pool (a futex wake-up and a context switch on a busy machine).
   */
  flushMs?: number;
  /** Fields on every line besides `pid` (a cluster worker adds its slot number). */
  bindings?: Record<string, unknown>;
  /** Other processes write to the same stdout (a cluster's primary and workers). */
  sharedStdout?: boolean;
}

/** About 32 KiB of lines per write (about 130 connection lines). */
const BATCH_CHARS = 32 * 1024;
const PIPE_BUF = 4096;
/** With a shared stdout: room for non-ASCII characters (UTF-8 bytes > chars) below PIPE_BUF. */
const SHARED_BATCH_CHARS = 3 * 1024;

/**
 * The batching in front of pino's destination (sonic-boom, which then writes each batch at once): lines are kept in
 * an array and joined once per batch. sonic-boom's own batching (`minLength`) appends every line to one string and
 * measures its UTF-8 length on every write, which flattens the growing string once per line.
 */
class LineBatch {
  readonly #dest: ReturnType<typeof pino.destination>;
  readonly #limit: number;
  #lines: string[] = [];
  #chars = 0;

  constructor(dest: ReturnType<typeof pino.destination>, flushMs: number, limit: number) {
    this.#dest = dest;
    this.#limit = limit;
    setInterval(() => this.#handOver(), flushMs).unref();
  }

  /** A batch never grows past the limit with a line (only a single longer line makes a longer write). */
  write(line: string): boolean {
    if (this.#chars + line.length > this.#limit) this.#handOver();
    this.#lines.push(line);
    this.#chars += line.length;
    if (this.#chars >= this.#limit) this.#handOver();
    return true;
  }

  flush(cb?: (err?: Error) => void): void {
    this.#handOver();
    this.#dest.flush(cb);
  }

  flushSync(): void {
    this.#handOver();
    this.#dest.flushSync();
  }

  /** Called at exit, before the destination's own exit flush. */
  handOver(): void {
    this.#handOver();
  }

  #handOver(): void {
    const n = this.#lines.length;
    if (n === 0) return;
    const s = n === 1 ? this.#lines[0]! : this.#lines.join('');
    this.#lines = [];
    this.#chars = 0;
    this.#dest.write(s);
  }
}

/**
 * Pretty logs are coloured only on a terminal: escapes in a file or a pipe (journald, `| less`, a log shipper) are
 * noise. NO_COLOR (no-color.org: any non-empty value) turns colours off even there.
 */
export function colourLogs(out: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return out.isTTY === true && !env.NO_COLOR;
}

/**
 * One JSON line per event on stdout (pino). Components take a child logger bound once, so per-event cost stays
 * a level check when the level is off.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const pretty = opts.pretty ?? (process.stdout.isTTY === true && !process.env.CI);
  const base = { level: opts.level ?? 'info', name: opts.name, base: { pid: process.pid, ...opts.bindings } };
  if (pretty) {
    const colorize = colourLogs(process.stdout, process.env);
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize, translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  if (!opts.flushMs) return pino(base, pino.destination({ dest: 1, sync: false }));
  // Registered before the destination registers its own exit flush, so the last batch is handed over first.
  let batch: LineBatch | null = null;
  process.on('exit', () => batch?.handOver());
  // Shared stdout: each write is whole lines and at most PIPE_BUF bytes, which a pipe writes atomically, so the
  // lines of several processes never interleave within a line.
  const shared = opts.sharedStdout === true;
  const dest = pino.destination({ dest: 1, sync: false, ...(shared ? { maxWrite: PIPE_BUF } : {}) });
  batch = new LineBatch(dest, opts.flushMs, shared ? SHARED_BATCH_CHARS : BATCH_CHARS);
  return pino(base, batch);
}

/**
 * For a hot path that formats its own line (the connection log line): the sink and the bindings of `log` (`,"pid":..
 * ,"name":..` and the child's) exactly as pino writes them, so that `{"level":30,"time":<ms>` + bindings + fields +
 * `,"msg":"..."}\n` is the line pino would write. Only for loggers of createLogger with batching (default
 * formatting, no mixin or hooks); null otherwise, and the caller logs through pino.
 */
export function lineSink(log: Logger): { write(line: string): boolean; bindings: string } | null {
  const l = log as unknown as Record<symbol, unknown>;
  const stream = l[pino.symbols.streamSym];
  const bindings = l[pino.symbols.chindingsSym];
  if (!(stream instanceof LineBatch) || typeof bindings !== 'string') return null;
  return { write: (line) => stream.write(line), bindings };
}

/** A logger that writes nothing, for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
