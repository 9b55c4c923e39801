/**
 * Compaction of the usage history: a day file goes once its last bucket is older than `keep`. Files are only ever
 * deleted whole, so compaction can be interrupted at any point (a crash, a stop) without damaging what remains;
 * readers also clamp their range to `keep`, so a day file awaiting deletion shows nothing beyond it.
 */
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import type { UsageStore } from './usage-store.ts';

const DAY_MS = 86_400_000;

/** Deletes the day files wholly older than `now - keepMs`; returns the names deleted. */
export async function compactUsage(store: UsageStore, keepMs: number, now: number): Promise<string[]> {
  const cutoff = now - keepMs;
  const gone: string[] = [];
  for (const f of await store.files()) {
    if (f.day + DAY_MS > cutoff) break;
    try {
      await unlink(path.join(store.dir, f.name));
      gone.push(f.name);
    } catch {
      // Already gone (another compaction) or not ours to delete: the next run tries again.
    }
  }
  return gone;
}
