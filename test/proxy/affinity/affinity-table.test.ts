import test from 'ava';
import { AffinityTable } from '../../../src/proxy/affinity/affinity-table.ts';

class S {
  bindingEpoch = 0;
  constructor(readonly name: string) {}
}

function table(ttl = 1000, maxBindings = 100) {
  let now = 0;
  const t = new AffinityTable<S>({ ttl, maxBindings, now: () => now });
  return { t, advance: (ms: number) => (now += ms) };
}

test('a binding is a hit while its client has connections, whatever the time', (t) => {
  const { t: tab, advance } = table();
  const a = new S('a');
  t.is(tab.acquire('10.0.0.1'), undefined);
  tab.bind('10.0.0.1', a);
  advance(10_000);
  t.is(tab.acquire('10.0.0.1'), a);
  t.deepEqual(tab.stats, { bindings: 1, hits: 1, misses: 1, evictions: 0, expired: 0 });
});

test('the TTL runs from the last connection close', (t) => {
  const { t: tab, advance } = table(1000);
  const a = new S('a');
  tab.bind('c', a); // 1 connection
  t.is(tab.acquire('c'), a); // 2 connections
  tab.release('c');
  advance(5000);
  t.is(tab.peek('c'), a, 'one connection still open: no expiry');
  tab.release('c'); // 0: TTL starts
  advance(999);
  t.is(tab.acquire('c'), a);
  tab.release('c');
  advance(1000);
  t.is(tab.acquire('c'), undefined, 'expired 1000ms after the last close');
  t.is(tab.size, 0);
});

test('a server epoch change drops all its bindings at once, others stay', (t) => {
  const { t: tab } = table();
  const a = new S('a');
  const b = new S('b');
  for (let i = 0; i < 10; i++) tab.bind(`a${i}`, a);
  for (let i = 0; i < 10; i++) tab.bind(`b${i}`, b);
  a.bindingEpoch++;
  t.is(tab.acquire('a3'), undefined);
  t.is(tab.acquire('b3'), b);
  t.is(tab.countByServer().get(a), undefined);
  t.is(tab.countByServer().get(b), 10);
  t.is(tab.sweep(), 9, 'the remaining stale bindings of a are swept');
});

test('the table is bounded: least recently used bindings are evicted', (t) => {
  const { t: tab } = table(1000, 3);
  const a = new S('a');
  tab.bind('1', a);
  tab.bind('2', a);
  tab.bind('3', a);
  t.is(tab.acquire('1'), a); // 1 becomes most recent
  tab.bind('4', a); // evicts 2
  t.is(tab.peek('2'), undefined);
  t.is(tab.peek('1'), a);
  t.is(tab.stats.evictions, 1);
  t.is(tab.size, 3);
  tab.configure({ ttl: 1000, maxBindings: 1 });
  t.is(tab.size, 1);
  t.is(tab.peek('4'), a, 'the most recent binding survives a lowered cap');
});

test('sweep removes expired bindings within its budget', (t) => {
  const { t: tab, advance } = table(100, 10_000);
  const a = new S('a');
  for (let i = 0; i < 1000; i++) {
    tab.bind(String(i), a);
    tab.release(String(i));
  }
  advance(100);
  t.is(tab.sweep(300), 300);
  t.is(tab.size, 700);
  t.is(tab.sweep(), 700);
  t.is(tab.stats.expired, 1000);
});

test('release without a binding and double release are harmless', (t) => {
  const { t: tab, advance } = table(100);
  const a = new S('a');
  tab.release('nobody');
  tab.bind('c', a);
  tab.release('c');
  tab.release('c');
  advance(50);
  t.is(tab.acquire('c'), a);
});
