/** Longest line the licd protocol allows (SPEC 4.1), counted without its `\n` or `\r\n` terminator. */
export const MAX_LINE_BYTES = 4096;

export interface LineDecoderHooks {
  /**
   * One complete line, terminator stripped, decoded as UTF-8 (invalid bytes become U+FFFD, never an exception).
   * Return `false` to stop the decoder after this line: `write` then returns how far it read, so a caller that
   * only wants the first line (the proxy reading `TOKENS <handle>`) can forward the rest of the chunk untouched.
   */
  onLine(line: string): void | boolean;
  /** The line in progress exceeded the limit. The decoder stops; the caller closes the connection. */
  onError(code: 'LINE_TOO_LONG'): void;
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * Splits a byte stream into lines, bounded to `maxBytes` per line. A line lying whole inside one chunk is decoded
 * straight from the chunk; only a line split across chunks is copied, into a buffer allocated on first need and
 * grown up to the limit, so the many idle connections of a license server cost no line buffer at all.
 */
export class LineDecoder {
  readonly #hooks: LineDecoderHooks;
  readonly #max: number;
  /** Partial-line bytes; at most the longest line plus a `\r` that may precede its `\n`. */
  #buf: Buffer | null = null;
  #len = 0;
  #stopped = false;

  constructor(hooks: LineDecoderHooks, maxBytes = MAX_LINE_BYTES) {
    this.#hooks = hooks;
    this.#max = maxBytes;
  }

  /** True once a hook stopped it or a line was too long; later writes are ignored. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Bytes of an unfinished line held back, waiting for its `\n`. */
  get pending(): number {
    return this.#len;
  }

  /** Stops decoding; the rest of the current chunk and later chunks are not read. */
  stop(): void {
    this.#stopped = true;
  }

  /** Forgets any partial line and resumes (a decoder reused for a new connection). */
  reset(): void {
    this.#len = 0;
    this.#stopped = false;
  }

  /** Feeds a chunk; returns how many of its bytes were read (all of them unless the decoder stopped). */
  write(chunk: Buffer): number {
    if (this.#stopped) return 0;
    const end = chunk.length;
    let start = 0;
    while (start < end) {
      const nl = chunk.indexOf(LF, start);
      if (nl === -1) {
        this.#hold(chunk, start, end);
        return this.#stopped ? start : end;
      }
      let line: string;
      if (this.#len === 0) {
        let stop = nl;
        if (stop > start && chunk[stop - 1] === CR) stop--;
        if (stop - start > this.#max) return this.#tooLong(), start;
        line = chunk.toString('utf8', start, stop);
      } else {
        this.#hold(chunk, start, nl);
        if (this.#stopped) return start;
        const buf = this.#buf!;
        let stop = this.#len;
        if (stop > 0 && buf[stop - 1] === CR) stop--;
        if (stop > this.#max) return this.#tooLong(), start;
        line = buf.toString('utf8', 0, stop);
        this.#len = 0;
      }
      start = nl + 1;
      if (this.#hooks.onLine(line) === false) this.#stopped = true;
      if (this.#stopped) return start;
    }
    return end;
  }

  #hold(chunk: Buffer, from: number, to: number): void {
    const n = to - from;
    if (n === 0) return;
    // One byte of slack for a `\r` whose `\n` has not arrived yet.
    const need = this.#len + n;
    if (need > this.#max + 1) return this.#tooLong();
    let buf = this.#buf;
    if (!buf || buf.length < need) {
      const grown = Buffer.allocUnsafe(Math.min(this.#max + 1, Math.max(256, need * 2)));
      if (buf && this.#len) buf.copy(grown, 0, 0, this.#len);
      this.#buf = buf = grown;
    }
    chunk.copy(buf, this.#len, from, to);
    this.#len += n;
  }

  #tooLong(): void {
    this.#stopped = true;
    this.#len = 0;
    this.#hooks.onError('LINE_TOO_LONG');
  }
}
