import test from 'ava';
import type { HealthMonitorLike } from '../../src/health/types.ts';
import { EventLog } from '../../src/proxy/event-log.ts';
import { makeTestPool } from '../helpers/proxy.ts';

const fakeMonitor = (): HealthMonitorLike & { started: boolean; stopped: boolean } => ({
  state: 'unknown',
  statusText: 'no check',
  started: false,
  stopped: false,
  start() {
    this.started = true;
  },
  stop() {
    this.stopped = true;
  },
  reportFailure() {},
  update() {},
});

test('status is one closed union, changed in one place: every change is one event', (t) => {
  const events = new EventLog();
  const pool = makeTestPool({ name: 'p', servers: [{ name: 'a', port: 1 }] }, { events });
  const a = pool.server('a')!;
  t.is(a.status, 'no check', 'no monitor: HAProxy shows "no check" and the server takes traffic');
  t.true(a.takesNewClients(Date.now()));
  a.setHealth('down', 'connect refused');
  t.is(a.status, 'DOWN');
  a.setHealth('down', 'again');
  a.setAdminState('drain');
  t.is(a.status, 'DOWN', 'DOWN wins over DRAIN');
  a.setHealth('up', 'back');
  t.is(a.status, 'DRAIN');
  a.setAdminState('ready');
  a.setWeight(0);
  t.is(a.status, 'NOLB');
  a.setAdminState('maint');
  t.is(a.status, 'MAINT');
  const statusEvents = events.list().filter((e) => e.kind === 'server');
  t.deepEqual(
    statusEvents.map((e) => `${e.from}>${e.to}`),
    ['no check>DOWN', 'DOWN>DRAIN', 'DRAIN>no check', 'no check>NOLB', 'NOLB>MAINT'],
  );
  t.is(a.counters.downTransitions, 1, 'an unchecked server is up, so its first DOWN is a transition');
});

test('a monitored server is unknown (no traffic) until its first result; counters track downtime', async (t) => {
  const monitors: ReturnType<typeof fakeMonitor>[] = [];
  const pool = makeTestPool({ name: 'p', check: { type: 'tcp' }, servers: [{ name: 'a', port: 1 }] });
  t.is(pool.server('a')!.health, 'up', 'makeTestPool has no monitor factory');
  const { Pool } = await import('../../src/proxy/pool.ts');
  const { makePool } = await import('../helpers/proxy.ts');
  const { silentLogger } = await import('../../src/common/logger.ts');
  const p2 = new Pool(makePool({ name: 'p', check: { type: 'tcp' }, servers: [{ name: 'a', port: 1 }] }), {
    log: silentLogger,
    events: new EventLog(),
    monitorFactory: () => {
      const m = fakeMonitor();
      monitors.push(m);
      return m;
    },
  });
  const a = p2.server('a')!;
  t.is(a.health, 'unknown');
  t.is(a.status, 'no check');
  t.false(p2.isAvailable());
  p2.start();
  t.true(monitors[0]!.started);
  a.setHealth('up', 'first check');
  t.is(a.status, 'UP');
  t.true(p2.isAvailable());
  a.setHealth('down', 'timeout');
  t.is(a.counters.downTransitions, 1);
  a.recordCheck({ ok: false, reason: 'timeout', durationMs: 500, at: Date.now() });
  t.is(a.counters.failedChecks, 1);
  t.true(a.snapshot().counters.downtime >= 0);
  p2.stop();
  t.true(monitors[0]!.stopped);
});

test('a reload keeps an admin-set weight and state unless the file changed them', (t) => {
  const pool = makeTestPool({ name: 'p', servers: [{ name: 'a', port: 1, weight: 10 }] });
  const a = pool.server('a')!;
  a.setWeight(3);
  a.setAdminState('drain');
  pool.update({ ...pool.config, retries: 1 });
  t.is(pool.server('a'), a);
  t.is(a.weight, 3);
  t.is(a.adminState, 'drain');
  pool.update({ ...pool.config, servers: [{ ...pool.config.servers[0]!, weight: 20, state: 'ready' }] });
  t.is(a.weight, 20);
  t.is(a.adminState, 'drain', 'the file still says ready, as before: the admin state stays');
  pool.update({ ...pool.config, servers: [{ ...pool.config.servers[0]!, state: 'maint' }] });
  t.is(a.adminState, 'maint');
});
