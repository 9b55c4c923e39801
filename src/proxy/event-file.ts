/**
 * The event log kept on disk (`stats.events`): one JSON object per line, appended as events happen and compacted to
 * the last `keep` (written to a temporary file, then renamed over: a crash mid-compaction leaves the old file).
 * Read back at start so /api/events shows the failover history across restarts. A crash can leave a partial last
 * line: it is skipped on reading, and the file is rewritten before anything is appended after it.
 *
 * Writes are asynchronous and one at a time, off the path that raised the event; lines are not fsync'd (a killed
 * process loses nothing the kernel has; a power cut may lose the last lines).
 */
import { appendFile, rename, writeFile } from 'node:fs/promises';
import { closeSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { EventKind, ProxyEvent } from './event-log.ts';

/**
 * A kind as licproxy writes them: the ones of this version, or a later version's (kept, not dropped by a rewrite, so
 * a downgrade and upgrade again loses no history).
 */
const KIND = /^[a-z][a-z_]{0,31}$/;
/** A line longer than this was not written by licproxy. */
const MAX_LINE = 16_384;
/** Of a file grown beyond reason (written by hand, or keep lowered), only the tail is read. */
const MAX_READ_BYTES = 64 * 1024 * 1024;

export interface LoadResult {
  events: ProxyEvent[];
  /** Lines that could not be read (a partial last line after a crash, foreign text). */
  skipped: number;
}

export class EventFile {
  readonly path: string;
  readonly #keep: number;
  /** The last `keep` lines as written, to compact from without reading the file back. */
  #lines: string[] = [];
  #linesInFile = 0;
  #pending: string[] = [];
  #writing: Promise<void> | null = null;
  #onError: (err: unknown) => void;

  constructor(path: string, keep: number, onError: (err: unknown) => void) {
    this.path = path;
    this.#keep = keep;
    this.#onError = onError;
  }

  /** Reads the file (absent: empty) and rewrites it compacted when it holds bad or surplus lines. Synchronous: at start. */
  load(): LoadResult {
    mkdirSync(dirname(this.path), { recursive: true });
    const text = readTail(this.path);
    const events: ProxyEvent[] = [];
    let skipped = 0;
    const raw = text.split('\n');
    const complete = raw.pop() === '';
    if (!complete) skipped++;
    for (const line of raw) {
      if (line === '') continue;
      const e = parseEvent(line);
      if (e === null) skipped++;
      else events.push(e);
    }
    const kept = events.slice(-this.#keep);
    this.#lines = kept.map((e) => `${JSON.stringify(e)}\n`);
    this.#linesInFile = raw.length;
    if (skipped > 0 || kept.length < events.length) this.#rewrite();
    return { events: kept, skipped };
  }

  /** Starts a file afresh with these events (a reload that moved `stats.events.file`). */
  reset(events: readonly ProxyEvent[]): void {
    mkdirSync(dirname(this.path), { recursive: true });
    this.#lines = events.slice(-this.#keep).map((e) => `${JSON.stringify(e)}\n`);
    this.#rewrite();
  }

  append(e: Readonly<ProxyEvent>): void {
    const line = `${JSON.stringify(e)}\n`;
    this.#lines.push(line);
    if (this.#lines.length > this.#keep * 2) this.#lines.splice(0, this.#lines.length - this.#keep);
    this.#pending.push(line);
    this.#kick();
  }

  /** Resolves once everything appended so far is written. */
  async flush(): Promise<void> {
    while (this.#writing !== null) await this.#writing;
  }

  #rewrite(): void {
    this.#pending = [];
    this.#compactNext = true;
    this.#kick();
  }

  #compactNext = false;

  #kick(): void {
    if (this.#writing !== null) return;
    this.#writing = this.#writeOnce().then(
      () => this.#done(),
      (err: unknown) => {
        this.#onError(err);
        this.#done();
      },
    );
  }

  #done(): void {
    this.#writing = null;
    if (this.#pending.length > 0 || this.#compactNext) this.#kick();
  }

  async #writeOnce(): Promise<void> {
    // Compact once the file holds half as many lines again as it keeps: rewrites stay rare, the file bounded.
    if (this.#compactNext || this.#linesInFile + this.#pending.length > this.#keep + Math.max(100, this.#keep >> 1)) {
      this.#compactNext = false;
      this.#pending = [];
      const keep = this.#lines.slice(-this.#keep);
      const tmp = `${this.path}.tmp`;
      await writeFile(tmp, keep.join(''));
      await rename(tmp, this.path);
      this.#linesInFile = keep.length;
      return;
    }
    const batch = this.#pending;
    this.#pending = [];
    await appendFile(this.path, batch.join(''));
    this.#linesInFile += batch.length;
  }
}

function readTail(path: string): string {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
  const start = Math.max(0, size - MAX_READ_BYTES);
  const buf = Buffer.alloc(size - start);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, buf.length, start);
  } finally {
    closeSync(fd);
  }
  const text = buf.toString('utf8');
  // Started mid-file: the first line is partial.
  return start > 0 ? text.slice(text.indexOf('\n') + 1) : text;
}

/** A line as licproxy writes it, or null: checked field by field, nothing else kept. */
export function parseEvent(line: string): ProxyEvent | null {
  if (line.length > MAX_LINE) return null;
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (typeof o.time !== 'number' || !Number.isFinite(o.time) || typeof o.kind !== 'string' || !KIND.test(o.kind) || typeof o.reason !== 'string') return null;
  const e: ProxyEvent = { time: o.time, kind: o.kind as EventKind, reason: o.reason };
  for (const k of ['pool', 'server', 'from', 'to'] as const) {
    const f = o[k];
    if (f === undefined) continue;
    if (typeof f !== 'string') return null;
    e[k] = f;
  }
  return e;
}
