/**
 * The usage history on disk: append-only text files, one per UTC day of bucket starts (`usage-2026-12-07.tsv`;
 * `usage-2026-12-07-b300.tsv` where buckets are not hours, which only tests use). Each closed bucket is appended in
 * one write and fsync'd once, so a crash loses at most the bucket still open in memory. A torn last line (power cut
 * mid-write) is skipped by readers, and the next append starts on a fresh line after it. Old days are dropped whole
 * by compaction (usage-compaction.ts); nothing is ever rewritten in place.
 */
import { open, readdir } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { decodeRecord, encodeRecord, headerLine, parseHeader, type UsageRecord } from './usage-record.ts';

export const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const FILE = /^usage-(\d{4})-(\d{2})-(\d{2})(?:-b(\d+))?\.tsv$/;
/** A file larger than this is not ours (a day of a large site is a few MB); it is skipped, never read whole. */
const MAX_FILE_BYTES = 256 * 1024 * 1024;

export interface UsageFile {
  name: string;
  /** UTC midnight of the day the file holds. */
  day: number;
}

export class UsageStore {
  readonly dir: string;
  readonly bucketMs: number;

  constructor(dir: string, bucketMs = HOUR_MS) {
    this.dir = dir;
    this.bucketMs = bucketMs;
    mkdirSync(dir, { recursive: true, mode: 0o750 });
  }

  fileName(day: number): string {
    const d = new Date(day).toISOString().slice(0, 10);
    return this.bucketMs === HOUR_MS ? `usage-${d}.tsv` : `usage-${d}-b${this.bucketMs}.tsv`;
  }

  /** Appends the records (any buckets) and fsyncs each file written once. */
  async append(records: readonly UsageRecord[]): Promise<void> {
    const byDay = new Map<number, string[]>();
    for (const r of records) {
      const day = Math.floor(r.at / DAY_MS) * DAY_MS;
      let lines = byDay.get(day);
      if (lines === undefined) byDay.set(day, (lines = []));
      lines.push(encodeRecord(r, this.bucketMs));
    }
    for (const [day, lines] of byDay) await this.#appendTo(path.join(this.dir, this.fileName(day)), lines.join(''));
  }

  async #appendTo(file: string, text: string): Promise<void> {
    const fh = await open(file, 'a+', 0o640);
    let size: number;
    try {
      size = (await fh.stat()).size;
      let prefix = '';
      if (size === 0) prefix = headerLine(this.bucketMs);
      else {
        // A torn line left by a crash: end it, so it stays one unreadable line instead of spoiling the next record.
        const last = Buffer.alloc(1);
        await fh.read(last, 0, 1, size - 1);
        if (last[0] !== 0x0a) prefix = '\n';
      }
      await fh.write(prefix + text);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    // A new file's directory entry must be durable too, or a crash could lose the whole file.
    if (size === 0) await syncDir(this.dir);
  }

  /** The day files of this store's bucket length, oldest first. */
  async files(): Promise<UsageFile[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const out: UsageFile[] = [];
    for (const name of names) {
      const m = FILE.exec(name);
      if (!m) continue;
      const bucket = m[4] === undefined ? HOUR_MS : Number(m[4]);
      if (bucket !== this.bucketMs) continue;
      out.push({ name, day: Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) });
    }
    return out.sort((a, b) => a.day - b.day);
  }

  /** Every record whose bucket starts in [from, to), in file order; torn and foreign lines are skipped. */
  async read(from: number, to: number): Promise<UsageRecord[]> {
    const out: UsageRecord[] = [];
    for (const f of await this.files()) {
      if (f.day + DAY_MS <= from || f.day >= to) continue;
      const file = path.join(this.dir, f.name);
      let text: string;
      try {
        const fh = await open(file, 'r');
        try {
          if ((await fh.stat()).size > MAX_FILE_BYTES) continue;
          text = await fh.readFile('utf8');
        } finally {
          await fh.close();
        }
      } catch {
        continue;
      }
      let bucketMs = this.bucketMs;
      let start = 0;
      // The last piece has no newline: a write in progress or torn by a crash; never read.
      const end = text.lastIndexOf('\n');
      while (start <= end) {
        const nl = text.indexOf('\n', start);
        const line = text.slice(start, nl);
        start = nl + 1;
        if (line.startsWith('#')) {
          bucketMs = parseHeader(line) ?? bucketMs;
          continue;
        }
        const r = decodeRecord(line, bucketMs);
        if (r !== null && r.at >= from && r.at < to) out.push(r);
      }
    }
    return out;
  }
}

async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the data itself is synced.
  }
}
