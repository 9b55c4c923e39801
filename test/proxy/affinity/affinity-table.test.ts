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
  t.is(tab.acquire('10.0.0.1')?.server, a);
  t.deepEqual(tab.stats, { bindings: 1, hits: 1, misses: 1, evictions: 0, expired: 0 });
});

test('the TTL runs from the last connection close', (t) => {
  const { t: tab, advance } = table(1000);
  const a = new S('a');
  tab.bind('c', a); // 1 connection
  t.is(tab.acquire('c')?.server, a); // 2 connections
  tab.release('c');
  advance(5000);
  t.is(tab.peek('c'), a, 'one connection still open: no expiry');
  tab.release('c'); // 0: TTL starts
  advance(999);
  t.is(tab.acquire('c')?.server, a);
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
  t.is(tab.acquire('b3')?.server, b);
  t.is(tab.countByServer().get(a), undefined);
  t.is(tab.countByServer().get(b), 10);
  t.is(tab.sweep(), 9, 'the remaining stale bindings of a are swept');
  t.is(tab.stats.expired, 10, 'the stale binding met by acquire counts too');
});

test('the table is bounded: least recently used bindings are evicted', (t) => {
  const { t: tab } = table(1000, 3);
  const a = new S('a');
  for (const k of ['1', '2', '3']) tab.release(tab.bind(k, a)); // idle bindings
  const one = tab.acquire('1'); // 1 becomes most recent
  t.is(one?.server, a);
  tab.release(one!);
  tab.release(tab.bind('4', a)); // evicts 2
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
  t.is(tab.acquire('c')?.server, a);
});

test('a binding with open connections is spared by capacity eviction while idle ones remain', (t) => {
  const { t: tab } = table(1000, 3);
  const a = new S('a');
  tab.bind('busy', a); // oldest, one connection open (a license held for hours)
  tab.release(tab.bind('idle1', a));
  tab.release(tab.bind('idle2', a));
  tab.release(tab.bind('new', a));
  t.is(tab.peek('busy'), a, 'the busy binding stays');
  t.is(tab.peek('idle1'), undefined, 'the oldest idle binding went instead');
  t.is(tab.stats.evictions, 1);
  t.is(tab.size, 3);
});

test('a connection releases the binding it holds, not the key: a rebound client keeps its TTL clock stopped', (t) => {
  const { t: tab, advance } = table(1000);
  const a = new S('a');
  const b = new S('b');
  const old = tab.bind('c', a); // a connection to a, still open
  a.bindingEpoch++; // a goes DOWN: the client's next connection is balanced anew
  t.is(tab.acquire('c'), undefined);
  const fresh = tab.bind('c', b); // its new connection, still open
  tab.release(old); // the old connection to a closes
  advance(5000);
  t.is(tab.acquire('c')?.server, b, 'the binding to b has an open connection: it does not expire');
  tab.release(fresh);
  t.false(tab.isLive(old));
  t.true(tab.isLive(fresh));
});

test('sweeps with a small budget resume where the last one stopped and cover the whole table', (t) => {
  const { t: tab, advance } = table(100, 10_000);
  const a = new S('a');
  for (let i = 0; i < 50; i++) tab.bind(`busy${i}`, a); // never released: never expire
  for (let i = 0; i < 50; i++) tab.release(tab.bind(`idle${i}`, a));
  advance(100);
  let removed = 0;
  for (let i = 0; i < 5; i++) removed += tab.sweep(20);
  t.is(removed, 50, 'the expired entries behind the busy ones were reached');
  t.is(tab.size, 50);
  t.is(tab.sweep(1_000_000), 0, 'a huge budget visits each entry once and stops');
});
