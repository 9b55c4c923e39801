import test from 'ava';
import { EventLog } from '../../src/proxy/event-log.ts';

test('the event log keeps the last N events, oldest first, as fresh plain objects', (t) => {
  const log = new EventLog(3);
  for (let i = 0; i < 5; i++) log.add({ kind: 'server', server: `s${i}`, reason: `r${i}` }, 1000 + i);
  const list = log.list();
  t.deepEqual(
    list.map((e) => [e.server, e.time]),
    [
      ['s2', 1002],
      ['s3', 1003],
      ['s4', 1004],
    ],
  );
  list[0]!.reason = 'changed';
  t.is(log.list()[0]!.reason, 'r2');
  t.is(log.size, 3);
});

test('the default log holds 1000 events', (t) => {
  const log = new EventLog();
  for (let i = 0; i < 1500; i++) log.add({ kind: 'reload', reason: String(i) });
  const list = log.list();
  t.is(list.length, 1000);
  t.is(list[0]!.reason, '500');
  t.is(list[999]!.reason, '1499');
});
