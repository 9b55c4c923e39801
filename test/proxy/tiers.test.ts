import test from 'ava';
import { EventLog } from '../../src/proxy/event-log.ts';
import type { Pool, SelectContext } from '../../src/proxy/pool.ts';
import { Server } from '../../src/proxy/server.ts';
import { connectClient, makePool, makeTestPool, readBytes, startProxy, type PoolSpec } from '../helpers/proxy.ts';
import { Pool as PoolClass } from '../../src/proxy/pool.ts';
import { silentLogger } from '../../src/common/logger.ts';
import { closedPort, startNamed } from '../helpers/backend.ts';
import { waitFor } from '../helpers/wait.ts';

const ctx: SelectContext = { clientIp: '10.0.0.1', exclude: null, frontendName: 'fe' };

/** Names of the servers new clients go to now, in pick order over a full round. */
function targets(pool: Pool): string {
  if (pool.select(ctx) === null) return '-';
  return pool.candidates.map((s) => s.name).join(',');
}

type Step = [action: string, expect: string];

function run(t: import('ava').ExecutionContext, pool: Pool, steps: Step[]): void {
  for (const [action, expect] of steps) {
    for (const a of action.split(' ').filter(Boolean)) {
      const [verb, name] = a.split(':') as [string, string];
      const s = pool.server(name)!;
      if (verb === 'down') s.setHealth('down', 'test');
      else if (verb === 'up') s.setHealth('up', 'test');
      else if (verb === 'drain' || verb === 'maint' || verb === 'ready') s.setAdminState(verb);
      else if (verb === 'w0') s.setWeight(0);
      else if (verb === 'w1') s.setWeight(1);
      else if (verb === 'master') s.recordCheck({ ok: true, reason: 'ok', durationMs: 1, at: Date.now(), master: true });
      else if (verb === 'slave') s.recordCheck({ ok: true, reason: 'ok', durationMs: 1, at: Date.now(), master: false });
      else throw new Error(`bad step ${a}`);
    }
    t.is(targets(pool), expect, `after "${action}"`);
  }
}

const tiered: PoolSpec['servers'] = [
  { name: 'a', port: 1, tier: 0 },
  { name: 'b', port: 2, tier: 0 },
  { name: 'c', port: 3, tier: 1 },
  { name: 'd', port: 4, tier: 2 },
];

const cases: { title: string; pool: Omit<PoolSpec, 'name'>; steps: Step[]; failovers?: number }[] = [
  {
    title: 'balance: tier 0 shares; a whole tier down spills to the next tier, and back when it returns',
    pool: { mode: 'balance', servers: tiered },
    steps: [
      ['', 'a,b'],
      ['down:a', 'b'],
      ['down:b', 'c'],
      ['down:c', 'd'],
      ['down:d', '-'],
      ['up:c', 'c'],
      ['up:b', 'b'],
      ['up:a', 'a,b'],
    ],
    failovers: 4,
  },
  {
    title: 'balance: drain, maint and weight 0 take no new clients',
    pool: { mode: 'balance', servers: tiered },
    steps: [
      ['drain:a', 'b'],
      ['maint:b', 'c'],
      ['ready:b', 'b'],
      ['w0:b', 'c'],
      ['w1:b ready:a', 'a,b'],
    ],
  },
  {
    title: 'failover: exactly one server, the first usable in (tier, declaration) order',
    pool: {
      mode: 'failover',
      servers: [
        { name: 'p', port: 1, tier: 0 },
        { name: 's1', port: 2, tier: 1 },
        { name: 's2', port: 3, tier: 1 },
        { name: 't', port: 4, tier: 2 },
      ],
    },
    steps: [
      ['', 'p'],
      ['down:p', 's1'],
      ['down:s1', 's2'],
      ['up:s1', 's1'],
      ['down:s1 down:s2', 't'],
      ['up:p', 'p'],
      ['down:p down:t', '-'],
    ],
    // p>s1, s1>s2, s2>s1, s1>s2>t (two moves), t>p, p>t
    failovers: 7,
  },
  {
    title: 'failover: declaration order breaks ties inside a tier, whatever the tier numbers are written as',
    pool: {
      mode: 'failover',
      servers: [
        { name: 'x', port: 1, tier: 1 },
        { name: 'y', port: 2, tier: 0 },
        { name: 'z', port: 3, tier: 0 },
      ],
    },
    steps: [
      ['', 'y'],
      ['down:y', 'z'],
      ['down:z', 'x'],
    ],
  },
  {
    title: 'master: only the server reporting MASTER; none = unavailable',
    pool: {
      mode: 'master',
      servers: [
        { name: 'm0', port: 1 },
        { name: 'm1', port: 2 },
        { name: 'm2', port: 3 },
      ],
    },
    steps: [
      ['', '-'],
      ['master:m1', 'm1'],
      ['slave:m1 master:m2', 'm2'],
      ['down:m2', '-'],
      ['master:m0', 'm0'],
    ],
    failovers: 2,
  },
];

for (const c of cases) {
  test(`tiers: ${c.title}`, (t) => {
    const events = new EventLog();
    const pool = makeTestPool({ name: 'p', ...c.pool }, { events });
    run(t, pool, c.steps);
    if (c.failovers !== undefined) {
      t.is(pool.counters.failovers, c.failovers);
      t.is(events.list().filter((e) => e.kind === 'failover' || e.kind === 'failback').length, c.failovers);
    }
  });
}

test('tiers: isAvailable / usableCount follow the servers', (t) => {
  const pool = makeTestPool({ name: 'p', servers: tiered });
  t.true(pool.isAvailable());
  t.is(pool.usableCount(), 4);
  for (const n of ['a', 'b', 'c', 'd']) pool.server(n)!.setHealth('down', 'test');
  t.false(pool.isAvailable());
  t.is(pool.usableCount(), 0);
  t.is(pool.snapshot().activeTier, -1);
});

test('failback: a recovered server waits failback.delay before it takes new clients, then ramps its weight', async (t) => {
  const pool = makeTestPool({
    name: 'p',
    failback: { delay: 300, slowstart: 1000 },
    servers: [
      { name: 'a', port: 1, tier: 0, weight: 100 },
      { name: 'b', port: 2, tier: 1 },
      { name: 'c', port: 3, tier: 0, weight: 100 },
    ],
  });
  const a = pool.server('a')!;
  const c = pool.server('c')!;
  a.setHealth('down', 'test');
  c.setHealth('down', 'test');
  t.is(targets(pool), 'b');
  c.setHealth('up', 'test');
  const upAt = Date.now(); // recoveredAt is at most a millisecond or two earlier
  t.is(targets(pool), 'b', 'still on the backup tier during the delay');
  t.is(c.status, 'NOLB');
  await waitFor(() => targets(pool) === 'c', { timeout: 5000, what: 'failback to c' });
  t.true(Date.now() - upAt >= 290);
  t.is(c.status, 'no check', 'unchecked servers show "no check" once the delay is over');
  // Ramp: half way through slowstart, half the weight.
  const half = c.effectiveWeight(upAt + 300 + 500);
  t.true(half >= 49 && half <= 52, `half-way weight ${half}`);
  t.is(c.effectiveWeight(upAt + 300 + 1000), 100);
  t.true(c.effectiveWeight(upAt + 300 + 10) <= 2);
  // A server recovering while nothing else is usable serves at once (better than no server).
  c.setHealth('down', 'test');
  pool.server('b')!.setHealth('down', 'test');
  a.setHealth('up', 'test');
  t.is(targets(pool), 'a');
});

test('failback comes even when the failback timer fires before Date.now() says the delay is over', async (t) => {
  // The timer runs on the event loop's monotonic clock, the delay is judged on Date.now(); each rounds to whole
  // milliseconds on its own, so at the recovery the wall clock may read up to a millisecond ahead, and the timer then
  // fires "early". That left the server NOLB for good (the tiers failback flake). Here the wall clock reads 20 ms
  // ahead at the recovery, so that no scheduling delay of the timer can hide the early firing.
  const pool = makeTestPool({
    name: 'p',
    failback: { delay: 50, slowstart: 0 },
    servers: [
      { name: 'a', port: 1, tier: 0 },
      { name: 'b', port: 2, tier: 1 },
    ],
  });
  const a = pool.server('a')!;
  a.setHealth('down', 'test');
  const wallClock = Date.now;
  Date.now = () => wallClock() + 20;
  try {
    a.setHealth('up', 'test'); // synchronous: nothing else runs while Date.now is ahead
  } finally {
    Date.now = wallClock;
  }
  t.is(targets(pool), 'b', 'still on the backup tier during the delay');
  await waitFor(() => targets(pool) === 'a', { timeout: 5000, what: 'failback to a' });
  t.is(a.status, 'no check');
});

test('tiers through real connections: each new client lands where the tiers say as servers go down and come back', async (t) => {
  const [b, c] = await Promise.all([startNamed(t, 'secondary'), startNamed(t, 'tertiary')]);
  const dead = await closedPort();
  const rt = await startProxy(t, {
    pools: [
      {
        name: 'p',
        retries: 1,
        redispatch: true,
        servers: [
          { name: 'primary', port: dead, tier: 0 },
          { name: 'secondary', port: b.port, tier: 1 },
          { name: 'tertiary', port: c.port, tier: 2 },
        ],
      },
    ],
  });
  const port = rt.port('p');
  const landOn = async (): Promise<string> => {
    const s = await connectClient(t, port);
    const r = (await readBytes(s, 1)).toString().trim();
    s.destroy();
    return r;
  };
  // Unchecked pool: the primary counts as up; its connects fail and nothing else is in its tier, so the retry goes
  // to the same server and the client is closed.
  t.is(await landOn(), '');
  t.is(rt.server('p', 'primary')!.counters.connectErrors, 2);
  rt.server('p', 'primary')!.setHealth('down', 'marked down');
  t.is(await landOn(), 'secondary');
  rt.server('p', 'secondary')!.setHealth('down', 'marked down');
  t.is(await landOn(), 'tertiary');
  rt.server('p', 'secondary')!.setHealth('up', 'back');
  t.is(await landOn(), 'secondary');
  t.true(rt.pool('p')!.counters.failovers >= 3);
  await waitFor(() => rt.live.size === 0, { what: 'connections closed' });
});

test('a Server is what select returns', (t) => {
  const pool = makeTestPool({ name: 'p', servers: tiered });
  t.true(pool.select(ctx) instanceof Server);
});

test('first check results arriving out of tier order are not a failover or failback', (t) => {
  const events = new EventLog();
  const spec = makePool({ name: 'p', servers: tiered, check: { type: 'tcp' } });
  // Monitors that do nothing: the servers stay unknown until the test reports their first results.
  const idle = { state: 'unknown' as const, statusText: 'no check', start() {}, stop() {}, reportFailure() {}, update() {} };
  const pool = new PoolClass(spec, { log: silentLogger, events, monitorFactory: () => idle });
  pool.start();
  const byName = (n: string) => pool.servers.find((s) => s.name === n)!;
  // The backup tiers answer first, the active tier last.
  for (const n of ['d', 'c', 'b', 'a']) byName(n).setHealth('up', 'first check passed');
  t.is(pool.counters.failovers, 0);
  t.false(events.list().some((e) => e.kind === 'failback' || e.kind === 'failover'));
  // Real failures afterwards are counted.
  byName('a').setHealth('down', 'connect refused');
  byName('b').setHealth('down', 'connect refused');
  t.is(pool.counters.failovers, 1);
});
