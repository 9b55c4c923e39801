/**
 * A hung primary (SIGSTOP: the kernel still completes TCP handshakes from the listen backlog, nothing answers),
 * through the real balancer, default check timings (SPEC 2.4). One licd pair behind four pools that differ only in
 * their check, so a single SIGSTOP shows them side by side:
 *
 * | pool    | check                          | expected                                                       |
 * |---------|--------------------------------|----------------------------------------------------------------|
 * | tcp     | tcp                            | stays UP: the generic balancers' blind spot                    |
 * | lm      | lmstat, on_down keep (default) | DOWN by timeouts; its stuck clients stay connected             |
 * | lmclose | lmstat, on_down close          | DOWN likewise; its stuck clients are disconnected at DOWN      |
 * | obs     | lmstat, observe: response      | DOWN sooner, from the unanswered heartbeats of live clients    |
 */
import test from 'ava';
import { LicenseClient } from '../../src/client/license-client.ts';
import { LineClient } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';
import { elapse, findEvent, serverSnap, spawnServer, startBalancer, waitEvent, waitSettled } from './support.ts';

const INTERVAL = 1_000;
const FAST = 250;
const TIMEOUT = 500;
const FALL = 3;
/**
 * interval + timeout + (fall - 1) x (fast_interval + timeout), each delay with its +-5% jitter: printed beside the
 * measured figures, not asserted (a loaded machine stretches every timer; bench/failover.ts measures the hang).
 */
const BOUND = INTERVAL * 1.05 + TIMEOUT + (FALL - 1) * (FAST * 1.05 + TIMEOUT);
/** Deadlines that only catch "never". */
const NEVER = 30_000;
const HELD = 5;
const HEARTBEAT_EVERY = 100;

test('hung primary: tcp stays UP, lmstat DOWN by check timeouts, observe by the live clients\' silence; on_down close cuts stuck clients, keep does not', async (t) => {
  t.timeout(90_000);
  const primary = await spawnServer(t, { name: 'primary' });
  const secondary = await spawnServer(t, { name: 'secondary' });
  const servers = `
    servers:
      - { name: primary,   address: 127.0.0.1:${primary.ports.license} }
      - { name: secondary, address: 127.0.0.1:${secondary.ports.license}, tier: 1 }`;
  const pools = { tcp: '{ type: tcp }', lm: '{ type: lmstat }', lmclose: '{ type: lmstat, on_down: close }', obs: '{ type: lmstat, observe: response }' };
  const app = await startBalancer(
    t,
    `
global: { log_level: silent }
defaults:
  mode: failover
  check: { interval: 1s, fast_interval: 250ms, down_interval: 5s, timeout: 500ms, rise: 2, fall: 3 }
pools:
${Object.entries(pools)
  .map(([name, check]) => `  ${name}:\n    check: ${check}${servers}`)
  .join('\n')}
frontends:
${Object.keys(pools)
  .map((name) => `  - { name: ${name}, listen: 127.0.0.1:0, pool: ${name} }`)
  .join('\n')}
`,
  );
  for (const name of Object.keys(pools)) await waitSettled(app, name, ['primary', 'secondary'], 'primary');

  // License connections on the primary, opened while it is healthy.
  const hold = async (pool: string): Promise<LineClient[]> => {
    const list: LineClient[] = [];
    for (let i = 0; i < HELD; i++) {
      const c = await LineClient.connect(app.runtime.port(pool));
      t.teardown(() => c.destroy());
      t.regex(await c.request(`HELLO user=u${i} host=ws${i}`), /^OK server=primary /);
      list.push(c);
    }
    return list;
  };
  const keepHeld = await hold('lm');
  const closeHeld = await hold('lmclose');
  const obsHeld = await hold('obs');
  // Traffic flows on the observed pool: a heartbeat every 100ms on each connection, answered while healthy.
  const beat = setInterval(() => {
    for (const c of obsHeld) if (!c.isClosed) c.send('HEARTBEAT');
  }, HEARTBEAT_EVERY);
  t.teardown(() => clearInterval(beat));
  await waitFor(async () => (await obsHeld[0]!.next(2_000)) === 'OK', { timeout: 5_000, what: 'heartbeats answered' });
  t.is(serverSnap(app, 'obs', 'primary').counters.failedChecks, 0, 'no false alarm while the server answers');

  const closedAt = closeHeld.map((c) => {
    const at = { time: 0 };
    void c.closed.then(() => (at.time = Date.now()));
    return at;
  });
  const stopAt = Date.now();
  primary.sigstop();
  // The stuck clients: each asks something the hung server will never answer.
  for (const c of [...keepHeld, ...closeHeld]) c.send('HEARTBEAT');

  const obsDown = await waitEvent(app, 'obs', 'primary', 'DOWN', stopAt, NEVER);
  const lmDown = await waitEvent(app, 'lm', 'primary', 'DOWN', stopAt, NEVER);
  const closeDown = await waitEvent(app, 'lmclose', 'primary', 'DOWN', stopAt, NEVER);
  const lmMs = lmDown.time - stopAt;
  const obsMs = obsDown.time - stopAt;
  const closeMs = closeDown.time - stopAt;
  t.log(`DOWN after SIGSTOP: lmstat ${lmMs}ms (${lmDown.reason}), lmstat+on_down close ${closeMs}ms, lmstat+observe ${obsMs}ms (${obsDown.reason}); bound ${Math.round(BOUND)}ms`);
  t.regex(lmDown.reason, /timeout after 500ms/);
  t.regex(closeDown.reason, /timeout after 500ms/);
  // Observe: the unanswered heartbeats of the live clients take it DOWN, before the checks could.
  t.regex(obsDown.reason, /no response within 500ms/);

  // on_down close: the stuck clients are let go at DOWN, so they can reconnect elsewhere.
  await waitFor(() => closedAt.every((c) => c.time > 0), { timeout: NEVER, interval: 5, what: 'on_down close: held clients closed' });
  const closedAfter = closedAt.map((c) => c.time - closeDown.time);
  t.log(`on_down close: the ${HELD} stuck clients were disconnected ${Math.min(...closedAfter)}-${Math.max(...closedAfter)}ms after DOWN`);
  t.true(closedAfter.every((ms) => ms >= 0), 'disconnected at DOWN, not before');

  // New clients go to the secondary and are served.
  for (const pool of ['lm', 'obs', 'lmclose']) {
    const c = await LicenseClient.connect('127.0.0.1', app.runtime.port(pool), { resume: false, timeout: 5_000 });
    t.teardown(() => c.destroy());
    t.is((await c.hello('new', 'ws')).server, 'secondary', `${pool}: a new client goes to the secondary`);
    t.regex((await c.checkout('LS-DYNA')).handle, /^secondary\./);
    await c.close();
  }

  // tcp: 3s after the SIGSTOP it is still UP, and a new client is sent into the hung server.
  await waitFor(() => Date.now() - stopAt >= 3_000, { timeout: 10_000, interval: 20, what: '3s after SIGSTOP' });
  const tcp = serverSnap(app, 'tcp', 'primary');
  t.is(tcp.status, 'UP', 'a tcp check cannot see a hung server');
  t.is(findEvent(app, 'tcp', 'primary', 'DOWN', stopAt), undefined);
  const blind = await LineClient.connect(app.runtime.port('tcp'));
  t.teardown(() => blind.destroy());
  await t.throwsAsync(blind.request('HELLO user=x host=y', 1_000), { message: /no line within/ }, 'sent to the hung server, no answer');

  // on_down keep: a second after DOWN, the stuck clients are still connected (a false alarm costs no license).
  await elapse(Math.max(0, lmDown.time + 1_000 - Date.now()));
  t.true(keepHeld.every((c) => !c.isClosed), 'on_down keep: held clients stay connected');
  t.true(obsHeld.every((c) => !c.isClosed), 'observe with on_down keep: held clients stay connected');

  // Resumed, the primary answers what it was asked and the kept connections carry on.
  primary.sigcont();
  t.is(await keepHeld[0]!.next(5_000), 'OK');
  t.is(await keepHeld[0]!.request('HEARTBEAT'), 'OK');
});
