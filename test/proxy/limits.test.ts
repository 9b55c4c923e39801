import test from 'ava';
import { encodeProxyV1, encodeProxyV2 } from '../../src/common/proxy-protocol.ts';
import { LineClient, startLicd } from '../helpers/licd.ts';
import { captureLogger, connectClient, readAll, readBytes, startProxy } from '../helpers/proxy.ts';
import { startBackend, startNamed } from '../helpers/backend.ts';
import { waitFor } from '../helpers/wait.ts';

test('allow: clients outside the CIDRs are closed at accept, counted and logged as denied', async (t) => {
  const b = await startNamed(t, 'a');
  const { log, closed } = captureLogger();
  const rt = await startProxy(
    t,
    {
      pools: [{ name: 'p', servers: [{ name: 'a', port: b.port }] }],
      frontends: [{ name: 'fe', pool: 'p', allow: ['127.0.0.1/32', '10.0.0.0/8'] }],
    },
    { log },
  );
  const denied = await connectClient(t, rt.port('fe'), { localAddress: '127.0.0.2' });
  const { data } = await readAll(denied);
  t.is(data.length, 0);
  const ok = await connectClient(t, rt.port('fe'));
  t.is((await readBytes(ok, 2)).toString(), 'a\n');
  const fe = rt.frontend('fe')!.counters;
  t.like(fe, { denied: 1, total: 2, current: 1 });
  t.is(b.accepted, 1);
  const l = closed().find((x) => x.end === 'denied')!;
  t.regex(String(l.client), /^127\.0\.0\.2:/);
});

test('max_connections: per frontend and global; clients over the limit are closed at accept and counted', async (t) => {
  const b = await startNamed(t, 'a');
  const rt = await startProxy(t, {
    global: { maxConnections: 3 },
    pools: [{ name: 'p', servers: [{ name: 'a', port: b.port }] }],
    frontends: [
      { name: 'f1', pool: 'p', maxConnections: 2 },
      { name: 'f2', pool: 'p' },
    ],
  });
  const held = [];
  for (let i = 0; i < 2; i++) {
    const s = await connectClient(t, rt.port('f1'));
    t.is((await readBytes(s, 2)).toString(), 'a\n');
    held.push(s);
  }
  const over = await connectClient(t, rt.port('f1'));
  t.is((await readAll(over)).data.length, 0);
  t.is(rt.frontend('f1')!.counters.overLimit, 1);
  const third = await connectClient(t, rt.port('f2'));
  t.is((await readBytes(third, 2)).toString(), 'a\n');
  const overGlobal = await connectClient(t, rt.port('f2'));
  t.is((await readAll(overGlobal)).data.length, 0);
  t.is(rt.frontend('f2')!.counters.overLimit, 1);
  held[0]!.destroy();
  await waitFor(() => rt.limits.current === 2);
  const again = await connectClient(t, rt.port('f2'));
  t.is((await readBytes(again, 2)).toString(), 'a\n');
});

for (const version of ['v1', 'v2'] as const) {
  test(`send_proxy ${version}: the server receives the PROXY header before the client's bytes`, async (t) => {
    let got: Buffer | null = null;
    const b = await startBackend(t, (s) => {
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => {
        chunks.push(d);
        const all = Buffer.concat(chunks);
        if (all.toString('latin1').endsWith('hello')) got = all;
      });
    });
    const rt = await startProxy(t, {
      pools: [{ name: 'p', servers: [{ name: 'a', port: b.port }] }],
      frontends: [{ name: 'fe', pool: 'p', sendProxy: version }],
    });
    const c = await connectClient(t, rt.port('fe'), { localAddress: '127.0.0.2' });
    c.write('hello');
    const data = await waitFor(() => got);
    const src = { address: '127.0.0.2', port: c.localPort! };
    const dst = { address: '127.0.0.1', port: rt.port('fe') };
    const header = version === 'v1' ? encodeProxyV1(src, dst) : encodeProxyV2(src, dst);
    t.deepEqual(data, Buffer.concat([header, Buffer.from('hello')]));
  });

  test(`send_proxy ${version} end to end: licd with proxy_protocol sees the real client address`, async (t) => {
    const licd = await startLicd({ proxyProtocol: true, allow: ['127.0.0.2/32'] });
    t.teardown(licd.stop);
    const rt = await startProxy(t, {
      pools: [{ name: 'p', servers: [{ name: 'a', ports: { license: licd.ports.license } }] }],
      frontends: [{ name: 'fe', pool: 'p', sendProxy: version }],
    });
    const c = await LineClient.connect(rt.port('fe'), { localAddress: '127.0.0.2' });
    t.teardown(() => c.destroy());
    t.regex(await c.request('HELLO user=bob host=ws2'), /^OK/);
    t.regex(await c.request('CHECKOUT LS-DYNA'), /^GRANTED/);
    const st = JSON.parse(await c.request('STATUS json')) as { sessions: { user: string; address: string; port: number }[] };
    const bob = st.sessions.find((s) => s.user === 'bob')!;
    t.is(bob.address.replace(/^::ffff:/, ''), '127.0.0.2');
    t.is(bob.port, c.socket.localPort!);
  });
}
