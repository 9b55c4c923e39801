/** The stats listener's usage routes (SPEC 10): which path is which, and the answer for each. */
import { parseUsageQuery } from './usage-query.ts';
import type { UsageRecorder } from './usage-recorder.ts';
import { renderUsageCsv, renderUsageJson } from './render-usage-data.ts';
import { renderUsagePage } from './render-usage-page.ts';

export type UsageRoute = 'api' | 'csv' | 'page';

export function usageRoute(segments: readonly string[]): UsageRoute | null {
  if (segments.length !== 2) return null;
  const [a, b] = segments;
  if (a === 'api' && b === 'usage') return 'api';
  if (a === 'api' && b === 'usage.csv') return 'csv';
  if (a === 'stats' && b === 'usage') return 'page';
  return null;
}

export interface UsageAnswer {
  status: number;
  type: string;
  body: string;
}

const TEXT = 'text/plain; charset=utf-8';

/**
 * Reading the history costs file reads and parsing (a year is 365 files): queries run one at a time per recorder,
 * and the same request within FRESH_MS gets the same answer, so a client hammering /api/usage costs the process
 * one query at a time, whatever its rate or parallelism.
 */
const FRESH_MS = 1_000;
const MAX_CACHED = 32;
const queues = new WeakMap<UsageRecorder, { chain: Promise<unknown>; answers: Map<string, { at: number; answer: UsageAnswer }> }>();

export async function answerUsage(route: UsageRoute, url: string | undefined, history: UsageRecorder | null | undefined): Promise<UsageAnswer> {
  if (!history) return { status: 404, type: TEXT, body: 'usage history is not kept: set stats.history in the configuration\n' };
  const parsed = parseUsageQuery(url, Date.now());
  if (!parsed.ok) return { status: 400, type: TEXT, body: `${parsed.message}\n` };
  let q = queues.get(history);
  if (q === undefined) queues.set(history, (q = { chain: Promise.resolve(), answers: new Map() }));
  const queue = q;
  const key = `${route} ${url ?? ''}`;
  const run = queue.chain.then(async () => {
    const hit = queue.answers.get(key);
    if (hit && performance.now() - hit.at < FRESH_MS) return hit.answer;
    const answer = await compute(route, parsed, history);
    queue.answers.delete(key);
    queue.answers.set(key, { at: performance.now(), answer });
    if (queue.answers.size > MAX_CACHED) queue.answers.delete(queue.answers.keys().next().value!);
    return answer;
  });
  queue.chain = run.catch(() => {});
  return run;
}

async function compute(route: UsageRoute, parsed: Extract<ReturnType<typeof parseUsageQuery>, { ok: true }>, history: UsageRecorder): Promise<UsageAnswer> {
  const result = await history.query(parsed.query);
  const format = route === 'csv' ? 'csv' : route === 'api' ? (parsed.format ?? 'json') : 'html';
  if (format === 'csv') return { status: 200, type: 'text/csv; charset=utf-8; header=present', body: renderUsageCsv(result) };
  if (format === 'json') return { status: 200, type: 'application/json; charset=utf-8', body: renderUsageJson(parsed.query, result) };
  return { status: 200, type: 'text/html; charset=utf-8', body: renderUsagePage(parsed.query, result) };
}
