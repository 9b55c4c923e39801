/**
 * Affinity by licd handle (SPEC 2.3 `by: handle`): the proxy reads the first line of a connection and routes a
 * `TOKENS <server>.<id> ...` to the server that issued the handle, so clients behind one NAT address are not
 * split; lines without a handle are balanced. Bad first lines are answered licd-style.
 */
import test from 'ava';
import type { SpawnedLicd } from '../../helpers/licd.ts';
import { captureLogger, makeConfig, startProxy } from '../../helpers/proxy.ts';
import { waitFor } from '../../helpers/wait.ts';
import { handleOf, licdProxy, Line, runBounded, serverOf, spawnLicds, stopAll } from './support.ts';

const NAMES = ['primary', 'secondary', 'tertiary'];

let licds: SpawnedLicd[] = [];
test.before(async () => {
  licds = await spawnLicds(null, NAMES);
});
test.after.always(() => stopAll(licds));

test.serial('by handle: 1,000 clients behind ONE source address (NAT): zero misroutes, every TOKENS granted', async (t) => {
  t.timeout(150_000);
  const rt = await licdProxy(t, licds, NAMES, { by: 'handle' });
  const helloServers = new Map<string, number>();
  const answers = await runBounded(1_000, 200, 120_000, async (i) => {
    const lic = await Line.connect(rt.port('license')); // all from 127.0.0.1
    try {
      const who = serverOf(await lic.request(`HELLO user=u${i} host=h${i}`)) ?? '?';
      helloServers.set(who, (helloServers.get(who) ?? 0) + 1);
      const handle = handleOf(await lic.request('CHECKOUT LS-DYNA'));
      if (!handle) return 'checkout failed';
      const tok = await Line.connect(rt.port('tokens'));
      try {
        return (await tok.request(`TOKENS ${handle} 2`)) ?? 'no answer';
      } finally {
        tok.destroy();
      }
    } finally {
      lic.destroy();
    }
  });
  const bad = answers.filter((a) => !a.startsWith('GRANTED'));
  t.log({ helloServers: Object.fromEntries(helloServers), bad: bad.length });
  t.deepEqual(bad.slice(0, 5), []);
  for (const n of NAMES) t.true((helloServers.get(n) ?? 0) > 150, `HELLO lines are balanced, ${n} took its share`);
  const a = rt.pool('lic')!.snapshot().affinity;
  t.is(a.by, 'handle');
  t.is(a.hits, 1_000, 'each TOKENS line routed by its handle');
  t.is(a.misses, 0);
  t.is(a.bindings, 0, 'no table: the binding travels in the handle');
});

test.serial('by handle: the first line and the bytes after it are forwarded unchanged', async (t) => {
  const rt = await licdProxy(t, licds, NAMES, { by: 'handle' });
  const lic = await Line.connect(rt.port('license'));
  t.teardown(() => lic.destroy());
  const handle = handleOf(await lic.request('CHECKOUT LS-DYNA'))!;
  t.regex(handle, /^(primary|secondary|tertiary)\./);
  const tok = await Line.connect(rt.port('tokens'));
  t.teardown(() => tok.destroy());
  tok.socket.write(`TOKENS ${handle} 3\r\nRELEASE 3\n`); // one write: both lines arrive with the first read
  t.regex((await tok.next()) ?? '', /^GRANTED tokens=3\b/);
  t.is(await tok.next(), 'OK');
  t.regex((await tok.request(`TOKENS ${handle} 1`)) ?? '', /^GRANTED tokens=1\b/, 'the connection goes on as a plain forward');
});

test.serial('by handle: a handle naming no server of the pool, or an unusable one, is answered by the proxy', async (t) => {
  const rt = await licdProxy(t, licds, NAMES, { by: 'handle' });
  const c = await Line.connect(rt.port('tokens'));
  t.is(await c.request('TOKENS nosuch.1a 4'), 'ERR UNKNOWN_HANDLE');
  t.is(await c.next(2_000), null, 'then closed');

  // primary in MAINT: in a balance pool its sessions are gone with it, so the proxy answers.
  rt.server('lic', 'primary')!.setAdminState('maint');
  const d = await Line.connect(rt.port('tokens'));
  t.is(await d.request('TOKENS primary.1a 4'), 'ERR UNKNOWN_HANDLE');
  t.is(await d.next(2_000), null);
  t.is(rt.pool('lic')!.snapshot().affinity.misses, 2);
});

test.serial('by handle: an over-long first line gets ERR LINE_TOO_LONG; a silent client is closed after timeouts.connect', async (t) => {
  const { log, closed } = captureLogger();
  const rt = await startProxy(
    t,
    makeConfig({
      pools: [
        {
          name: 'lic',
          ports: { license: 1, tokens: 1 },
          affinity: { by: 'handle', ttl: 60_000, maxBindings: 100 },
          timeouts: { connect: 300 },
          servers: licds.map((l, i) => ({ name: NAMES[i]!, ports: { license: l.ports.license, tokens: l.ports.tokens } })),
        },
      ],
      frontends: [{ name: 'tokens', pool: 'lic', port: 'tokens' }],
    }),
    { log },
  );
  const long = await Line.connect(rt.port('tokens'));
  long.socket.write('TOKENS ' + 'x'.repeat(5_000));
  t.is(await long.next(), 'ERR LINE_TOO_LONG');
  t.is(await long.next(2_000), null, 'then closed');

  const silent = await Line.connect(rt.port('tokens'));
  t.is(await silent.next(5_000), null, 'closed without a word');
  t.true(silent.closed);

  const unknown = await Line.connect(rt.port('tokens'));
  t.is(await unknown.request('TOKENS nosuch.1 1'), 'ERR UNKNOWN_HANDLE');

  const ends = await waitFor(() => {
    const l = closed();
    return l.length >= 3 ? l : null;
  });
  const byEnd = new Map(ends.map((l) => [l.end, l]));
  t.regex(String(byEnd.get('bad_request')?.error), /first line over 4096 bytes/);
  t.regex(String(byEnd.get('first_line_timeout')?.error), /no complete first line within 300ms/);
  t.regex(String(byEnd.get('unknown_handle')?.error), /handle nosuch\.1 names no usable server of pool lic/);
  for (const l of ends) t.is(l.server, null, 'no server was contacted');
});
