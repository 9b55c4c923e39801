/** `/stats.json` and `/api/events`: the snapshot and the event log as they are (they are plain data by contract). */
import type { StatsEvent, StatsSnapshot } from './snapshot.ts';

export function renderJson(snapshot: StatsSnapshot): string {
  return JSON.stringify(snapshot);
}

/** Oldest first, at most `limit` (the newest ones). */
export function renderEventsJson(events: readonly StatsEvent[], limit = 1000): string {
  const list = events.length > limit ? events.slice(events.length - limit) : events;
  return JSON.stringify({ events: list });
}
