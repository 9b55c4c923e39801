import test from 'ava';
import type { ProxyConfig } from '../../src/config/proxy-config.ts';
import { LpxError } from '../../src/common/errors.ts';
import { LineClient, startLicd } from '../helpers/licd.ts';
import { connectClient, makeConfig, readBytes, startProxy, type ConfigSpec } from '../helpers/proxy.ts';
import { startBackend, startNamed, type Backend } from '../helpers/backend.ts';
import { waitFor } from '../helpers/wait.ts';

const HELD = 500;

/** The licd pool and frontend stay; reload `i` adds, removes and changes other pools and frontends around them. */
function variant(licdPort: number, extras: Backend[], i: number): ConfigSpec {
  const pools: ConfigSpec['pools'] = [
    {
      name: 'lic',
      // Changes that must take effect for new connections only.
      retries: i % 3,
      timeouts: { idle: 600_000 + i },
      servers: [{ name: 'licd', ports: { license: licdPort }, weight: 1 + (i % 4) }],
    },
  ];
  const frontends: NonNullable<ConfigSpec['frontends']> = [{ name: 'lic', pool: 'lic', maxConnections: 10_000 + i }];
  for (let k = 0; k < extras.length; k++) {
    if ((i + k) % 3 === 0) continue; // removed in this round
    pools.push({
      name: `x${k}`,
      balance: i % 2 ? 'leastconn' : 'roundrobin',
      servers: extras.slice(0, 1 + ((i + k) % extras.length)).map((b, j) => ({ name: `s${j}`, port: b.port, weight: 1 + j })),
    });
    frontends.push({ name: `fx${k}`, pool: `x${k}` });
  }
  return { pools, frontends };
}

test(`reload under traffic: ${HELD} held licenses survive 20 reloads; heartbeats still answered`, async (t) => {
  const licd = await startLicd({ features: [{ name: 'LS-DYNA', count: HELD + 10 }] });
  t.teardown(licd.stop);
  const extras = await Promise.all([startNamed(t, 'e0'), startNamed(t, 'e1'), startNamed(t, 'e2')]);
  const rt = await startProxy(t, makeConfig(variant(licd.ports.license, extras, 0)));
  const port = rt.port('lic');
  const clients: LineClient[] = [];
  t.teardown(() => clients.forEach((c) => c.destroy()));
  for (let i = 0; i < HELD; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, HELD - i) }, async (_, k) => {
        const c = await LineClient.connect(port);
        clients.push(c);
        const hello = await c.request(`HELLO user=u${i + k} host=h${i + k}`);
        const grant = await c.request('CHECKOUT LS-DYNA');
        return hello.startsWith('OK') && grant.startsWith('GRANTED');
      }),
    );
    t.true(batch.every(Boolean));
  }
  const licdServer = rt.server('lic', 'licd')!;
  t.is(licdServer.counters.cur, HELD);

  for (let i = 1; i <= 20; i++) {
    await rt.apply(makeConfig(variant(licd.ports.license, extras, i)));
    // Every frontend of this round accepts and reaches its pool.
    for (const fe of rt.snapshot().frontends.filter((f) => f.name.startsWith('fx'))) {
      const s = await connectClient(null, Number(fe.address!.split(':')[1]));
      t.regex((await readBytes(s, 3)).toString(), /^e\d\n$/);
      s.destroy();
    }
  }
  t.is(rt.port('lic'), port, 'an unchanged listener is kept');
  t.is(rt.server('lic', 'licd'), licdServer, 'an unchanged server is the same object');
  t.is(licdServer.counters.cur, HELD);
  t.is(licdServer.counters.total, HELD);
  t.is(licdServer.weight, 1 + (20 % 4), 'a changed weight applies');
  t.true(clients.every((c) => !c.isClosed));
  for (let i = 0; i < HELD; i += 100) {
    const answers = await Promise.all(clients.slice(i, i + 100).map((c) => c.request('HEARTBEAT')));
    t.true(answers.every((a) => a === 'OK'), `heartbeats ${i}..${i + 99}`);
  }
  const admin = await LineClient.connect(licd.ports.license);
  t.teardown(() => admin.destroy());
  const st = JSON.parse(await admin.request('STATUS json')) as { features: { name: string; inUse: number }[] };
  t.is(st.features.find((f) => f.name === 'LS-DYNA')!.inUse, HELD);
  t.is(rt.eventList().filter((e) => e.kind === 'reload').length, 20);
});

test('a removed frontend stops accepting, but its live connections stay; a removed server keeps its connections', async (t) => {
  const [a, b] = await Promise.all([startNamed(t, 'a'), startNamed(t, 'b')]);
  const base: ConfigSpec = {
    pools: [
      {
        name: 'p',
        servers: [
          { name: 'a', port: a.port },
          { name: 'b', port: b.port },
        ],
      },
    ],
    frontends: [
      { name: 'f1', pool: 'p' },
      { name: 'f2', pool: 'p' },
    ],
  };
  const rt = await startProxy(t, base);
  const f2 = rt.port('f2');
  const onA = await connectClient(t, rt.port('f1'));
  const onB = await connectClient(t, f2);
  t.is((await readBytes(onA, 2)).toString(), 'a\n');
  t.is((await readBytes(onB, 2)).toString(), 'b\n');
  const summary = await rt.apply(
    makeConfig({ pools: [{ name: 'p', servers: [{ name: 'a', port: a.port }] }], frontends: [{ name: 'f1', pool: 'p' }] }),
  );
  t.deepEqual(summary.removed, ['frontend f2']);
  t.deepEqual(summary.changed, ['pool p']);
  await t.throwsAsync(connectClient(null, f2), { code: 'ECONNREFUSED' });
  onB.write('still');
  t.is((await readBytes(onB, 5)).toString(), 'still', 'the removed server and frontend still carry their connection');
  onA.write('here');
  t.is((await readBytes(onA, 4)).toString(), 'here');
  const s = await connectClient(t, rt.port('f1'));
  t.is((await readBytes(s, 2)).toString(), 'a\n');
  t.is(rt.server('p', 'b'), undefined);
  onB.destroy();
  await waitFor(() => rt.live.size === 2);
});

test('a moved listen address opens the new listener and stops the old one from accepting; live connections stay', async (t) => {
  const a = await startNamed(t, 'a');
  const rt = await startProxy(t, { pools: [{ name: 'p', servers: [{ name: 'a', port: a.port }] }] });
  const oldPort = rt.port('p');
  const held = await connectClient(t, oldPort);
  await readBytes(held, 2);
  const cfg = makeConfig({ pools: [{ name: 'p', servers: [{ name: 'a', port: a.port }] }], frontends: [{ name: 'p', pool: 'p', listen: { host: '127.0.0.2', port: 0 } }] });
  await rt.apply(cfg);
  const newAddr = rt.frontend('p')!.address()!;
  t.is(newAddr.address, '127.0.0.2');
  await t.throwsAsync(connectClient(null, oldPort), { code: 'ECONNREFUSED' });
  held.write('ok');
  t.is((await readBytes(held, 2)).toString(), 'ok');
  t.is(rt.frontend('p')!.counters.total, 1, 'the frontend keeps its counters');
});

test('an invalid reload (listener cannot open, unknown pool) changes nothing', async (t) => {
  const a = await startNamed(t, 'a');
  const busy = await startBackend(t, () => {});
  const base = makeConfig({ pools: [{ name: 'p', servers: [{ name: 'a', port: a.port }] }] });
  const rt = await startProxy(t, base);
  const port = rt.port('p');
  const held = await connectClient(t, port);
  await readBytes(held, 2);
  const before = JSON.stringify(rt.snapshot().pools);
  const bad: ProxyConfig = makeConfig({
    pools: [
      { name: 'p', servers: [{ name: 'a', port: a.port, weight: 7 }] },
      { name: 'q', servers: [{ name: 'z', port: a.port }] },
    ],
    frontends: [
      { name: 'p', pool: 'p' },
      { name: 'new', pool: 'q' },
      { name: 'clash', pool: 'q', listen: { host: '127.0.0.1', port: busy.port } },
    ],
  });
  const err = await t.throwsAsync(rt.apply(bad), { instanceOf: LpxError });
  t.is(err!.code, 'LPX_ERR_LISTEN');
  t.regex(err!.message, /frontend clash: cannot listen on 127\.0\.0\.1:\d+: address in use/);
  t.is(rt.config, base);
  t.is(rt.pool('q'), undefined);
  t.is(rt.frontend('new'), undefined);
  t.is(rt.server('p', 'a')!.weight, 1);
  t.is(JSON.stringify(rt.snapshot().pools).length, before.length);
  const unknownPool = { ...base, frontends: [{ ...base.frontends[0]!, pool: 'nope' }] };
  await t.throwsAsync(rt.apply(unknownPool), { instanceOf: LpxError });
  t.is(rt.port('p'), port);
  held.write('ok');
  t.is((await readBytes(held, 2)).toString(), 'ok');
  const again = await connectClient(t, port);
  t.is((await readBytes(again, 2)).toString(), 'a\n');
});

test('a frontend renamed on the same address: its listener is handed over, no "address in use", held connections stay', async (t) => {
  const [a] = await Promise.all([startNamed(t, 'a')]);
  const pools: ConfigSpec['pools'] = [{ name: 'p', servers: [{ name: 'a', port: a.port }] }];
  const rt = await startProxy(t, { pools, frontends: [{ name: 'old', pool: 'p' }] });
  const port = rt.port('old');
  const held = await connectClient(t, port);
  t.is((await readBytes(held, 2)).toString(), 'a\n');
  const renamed = makeConfig({ pools, frontends: [{ name: 'new', pool: 'p', listen: { host: '127.0.0.1', port } }] });
  const summary = await rt.apply(renamed);
  t.deepEqual(summary.added, ['frontend new']);
  t.deepEqual(summary.removed, ['frontend old']);
  t.is(rt.port('new'), port);
  t.is(rt.frontend('old'), undefined);
  held.write('held');
  t.is((await readBytes(held, 4)).toString(), 'held', 'the connection accepted by the old name still forwards');
  const fresh = await connectClient(t, port);
  t.is((await readBytes(fresh, 2)).toString(), 'a\n');
  await waitFor(() => rt.frontend('new')!.counters.total === 1, { what: 'the new frontend counts its client' });

  // Two frontends swapping addresses hand their listeners to each other.
  const two = await rt.apply(makeConfig({ pools, frontends: [{ name: 'new', pool: 'p', listen: { host: '127.0.0.1', port } }, { name: 'b', pool: 'p' }] }));
  t.deepEqual(two.added, ['frontend b']);
  const portB = rt.port('b');
  await rt.apply(makeConfig({
    pools,
    frontends: [
      { name: 'new', pool: 'p', listen: { host: '127.0.0.1', port: portB } },
      { name: 'b', pool: 'p', listen: { host: '127.0.0.1', port } },
    ],
  }));
  t.is(rt.port('new'), portB);
  t.is(rt.port('b'), port);
  const viaB = await connectClient(t, port);
  t.is((await readBytes(viaB, 2)).toString(), 'a\n');
  await waitFor(() => rt.frontend('b')!.counters.total === 1, { what: 'b counts the client on its new address' });
  held.write('still');
  t.is((await readBytes(held, 5)).toString(), 'still');
});
