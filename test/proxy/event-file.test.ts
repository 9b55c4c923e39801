/**
 * The event log on disk (`stats.events`): append, compaction to the last `keep`, a crash's partial last line, and
 * a real licproxy restarted that still shows the events of its previous run on /api/events.
 */
import test from 'ava';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventFile, parseEvent } from '../../src/proxy/event-file.ts';
import { EventLog } from '../../src/proxy/event-log.ts';
import { startEcho } from '../helpers/backend.ts';
import { getJson } from '../helpers/stats.ts';
import { waitFor } from '../helpers/wait.ts';
import { runBalancer } from '../alerts/run-balancer.ts';
import type { StatsEvent } from '../../src/stats/snapshot.ts';

function tempDir(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'lpx-events-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function lines(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l !== '');
}

test('events are appended as JSON lines and read back in order', async (t) => {
  const path = join(tempDir(t), 'sub', 'events.jsonl');
  const f = new EventFile(path, 100, (e) => t.fail(String(e)));
  t.deepEqual(f.load(), { events: [], skipped: 0 });
  for (let i = 0; i < 5; i++) f.append({ time: 1000 + i, kind: 'server', pool: 'p', server: `s${i}`, from: 'UP', to: 'DOWN', reason: `r${i}` });
  await f.flush();
  t.is(lines(path).length, 5);
  const again = new EventFile(path, 100, () => {}).load();
  t.deepEqual(again.events.map((e) => e.server), ['s0', 's1', 's2', 's3', 's4']);
  t.deepEqual(again.events[0], { time: 1000, kind: 'server', pool: 'p', server: 's0', from: 'UP', to: 'DOWN', reason: 'r0' });
});

test('the file is compacted to the last keep events; the file stays bounded however many are added', async (t) => {
  const path = join(tempDir(t), 'events.jsonl');
  const f = new EventFile(path, 10, (e) => t.fail(String(e)));
  f.load();
  for (let i = 0; i < 1000; i++) {
    f.append({ time: i, kind: 'failover', pool: 'p', reason: `n${i}` });
    if (i % 97 === 0) await f.flush();
  }
  await f.flush();
  const n = lines(path).length;
  t.true(n >= 10 && n <= 10 + 100 + 1, `${n} lines`);
  const back = new EventFile(path, 10, () => {}).load();
  t.deepEqual(back.events.map((e) => e.reason), Array.from({ length: 10 }, (_, i) => `n${990 + i}`));
  // Loading a file longer than keep rewrote it to keep.
  await waitFor(() => lines(path).length === 10, { what: 'the compacted file' });
});

test('a partial last line (a crash mid-write) and foreign lines are skipped, and the file repaired before appending', async (t) => {
  const path = join(tempDir(t), 'events.jsonl');
  const good = JSON.stringify({ time: 1, kind: 'server', pool: 'p', server: 'a', to: 'DOWN', reason: 'x' });
  writeFileSync(path, `${good}\nnot json\n{"time":"x","kind":"server","reason":"r"}\n{"time":2,"kind":"Bad Kind","reason":"r"}\n${good.slice(0, 20)}`);
  const f = new EventFile(path, 100, (e) => t.fail(String(e)));
  const r = f.load();
  t.is(r.events.length, 1);
  t.is(r.skipped, 4);
  f.append({ time: 3, kind: 'reload', reason: 'reloaded: no change' });
  await f.flush();
  const back = new EventFile(path, 100, () => {}).load();
  t.deepEqual(back.events.map((e) => e.time), [1, 3]);
  t.is(back.skipped, 0);
  t.is(parseEvent('{"time":1,"kind":"admin","reason":"r","pool":5}'), null);
});

test('EventLog.restore puts earlier events first and tells no subscriber; subscribers see new events', (t) => {
  const log = new EventLog(3);
  const seen: string[] = [];
  log.subscribe((e) => seen.push(e.reason));
  log.add({ kind: 'reload', reason: 'now' }, 10);
  log.restore([
    { time: 1, kind: 'reload', reason: 'old1' },
    { time: 2, kind: 'reload', reason: 'old2' },
    { time: 3, kind: 'reload', reason: 'old3' },
  ]);
  t.deepEqual(log.list().map((e) => e.reason), ['old2', 'old3', 'now']);
  log.add({ kind: 'reload', reason: 'next' }, 11);
  t.deepEqual(log.list().map((e) => e.reason), ['old3', 'now', 'next']);
  t.deepEqual(seen, ['now', 'next']);
});

test('a restarted licproxy shows the events of its previous run on /api/events, even after SIGKILL', async (t) => {
  const victim = await startEcho(t);
  const body = `pools:
  echo:
    check: { type: tcp, interval: 100ms, fast_interval: 50ms, down_interval: 100ms, timeout: 200ms, rise: 1, fall: 1 }
    servers:
      - { name: victim, address: 127.0.0.1:${victim.port} }
frontends:
  - { name: echo, listen: 127.0.0.1:0, pool: echo }
`;
  const first = await runBalancer(t, body, '  events: { file: state/events.jsonl, keep: 50 }\n');
  const events = async (stats: { host: string; port: number }): Promise<StatsEvent[]> => (await getJson<{ events: StatsEvent[] }>(stats, '/api/events')).json.events;
  await waitFor(async () => (await events(first.stats)).some((e) => e.server === 'victim' && e.to === 'UP'), { what: 'victim UP', timeout: 10_000 });
  await victim.close();
  await waitFor(async () => (await events(first.stats)).some((e) => e.server === 'victim' && e.to === 'DOWN'), { what: 'victim DOWN', timeout: 10_000 });
  const before = await events(first.stats);
  const file = join(first.dir, 'state', 'events.jsonl');
  await waitFor(() => lines(file).length >= before.length, { what: 'the events on disk' });
  first.child.kill('SIGKILL');
  await first.exited;
  // A crash mid-write leaves a partial line: the next run skips it.
  appendFileSync(file, '{"time":17');
  const second = await first.restart();
  const after = await events(second.stats);
  const key = (e: StatsEvent): string => `${e.at} ${e.type} ${e.server ?? ''} ${e.to ?? ''} ${e.reason}`;
  t.deepEqual(after.slice(0, before.length).map(key), before.map(key));
  t.true(after.some((e) => e.type === 'down' && e.server === 'victim'));
});
