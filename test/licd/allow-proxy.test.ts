import test from 'ava';
import { publicHandle } from '../../src/licd/handles.ts';
import { connect } from 'node:net';
import { encodeProxyV1, encodeProxyV2 } from '../../src/common/proxy-protocol.ts';
import { LineClient, startLicd } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';

const FEATURES = [
  { name: 'LS-DYNA', count: 5 },
  { name: 'MPPDYNA', count: 16, kind: 'tokens' as const },
];

test('allow: a client outside the CIDRs gets ERR NOT_ALLOWED and is closed, on both ports', async (t) => {
  const licd = await startLicd({ features: FEATURES, allow: ['127.0.0.1/32'] });
  t.teardown(licd.stop);
  for (const port of [licd.ports.license, licd.ports.tokens]) {
    const denied = await LineClient.connect(port, { localAddress: '127.0.0.2' });
    t.teardown(() => denied.destroy());
    t.is(await denied.next(), 'ERR NOT_ALLOWED');
    await denied.closed;
  }
  const ok = await LineClient.connect(licd.ports.license, { localAddress: '127.0.0.1' });
  t.teardown(() => ok.destroy());
  t.regex(await ok.request('CHECKOUT LS-DYNA'), /^GRANTED/);
  await waitFor(() => licd.server.status().connections.license === 1);
});

test('allow: a denied client sending a checkout gets no seat', async (t) => {
  const licd = await startLicd({ features: FEATURES, allow: ['10.0.0.0/8'] });
  t.teardown(licd.stop);
  const c = await LineClient.connect(licd.ports.license);
  t.teardown(() => c.destroy());
  c.send('CHECKOUT LS-DYNA');
  t.is(await c.next(), 'ERR NOT_ALLOWED');
  await c.closed;
  t.is(licd.server.status().features[0]!.inUse, 0);
});

for (const [name, encode] of [['v1', encodeProxyV1], ['v2', encodeProxyV2]] as const) {
  test(`proxy_protocol: the PROXY ${name} source address is used in STATUS and for allow`, async (t) => {
    const licd = await startLicd({ features: FEATURES, proxyProtocol: true, allow: ['10.0.0.0/8'] });
    t.teardown(licd.stop);
    const c = await LineClient.connect(licd.ports.license);
    t.teardown(() => c.destroy());
    // Header and first request in one write: the bytes after the header are the protocol.
    c.write(Buffer.concat([encode({ address: '10.1.2.3', port: 40000 }, { address: '10.9.9.9', port: 31010 }), Buffer.from('CHECKOUT LS-DYNA\n')]));
    const h = /handle=(\S+)/.exec(await c.next())![1]!;
    const s = licd.server.status();
    t.is(s.sessions[0]!.address, '10.1.2.3');
    t.is(s.sessions[0]!.port, 40000);
    t.is(s.sessions[0]!.host, '10.1.2.3', 'without HELLO the host is the client address');
    c.send('STATUS');
    const lines = await c.readUntil('END');
    t.true(lines.some((l) => l.startsWith('    unknown 10.1.2.3 10.1.2.3 ') && l.includes(publicHandle(h))), lines.join('\n'));

    // The token port reads the header too; split across writes here.
    const tk = await LineClient.connect(licd.ports.tokens);
    t.teardown(() => tk.destroy());
    const hdr = encode({ address: '10.1.2.3', port: 40001 }, { address: '10.9.9.9', port: 31011 });
    tk.write(hdr.subarray(0, 5));
    await new Promise((r) => setImmediate(r));
    tk.write(hdr.subarray(5));
    t.is(await tk.request(`TOKENS ${h} 2`), 'GRANTED tokens=2 feature=MPPDYNA');

    const outsider = await LineClient.connect(licd.ports.license);
    t.teardown(() => outsider.destroy());
    outsider.write(encode({ address: '192.168.1.1', port: 1 }, { address: '10.9.9.9', port: 31010 }));
    t.is(await outsider.next(), 'ERR NOT_ALLOWED');
    await outsider.closed;
  });
}

test('proxy_protocol: a connection without a valid header is refused; a LOCAL header uses the socket address', async (t) => {
  const licd = await startLicd({ features: FEATURES, proxyProtocol: true });
  t.teardown(licd.stop);
  const bad = await LineClient.connect(licd.ports.license);
  t.teardown(() => bad.destroy());
  bad.send('CHECKOUT LS-DYNA');
  t.is(await bad.next(), 'ERR NOT_ALLOWED');
  await bad.closed;
  const local = await LineClient.connect(licd.ports.license);
  t.teardown(() => local.destroy());
  local.write(encodeProxyV2());
  t.is(await local.request('HEARTBEAT'), 'OK');
  t.is(licd.server.status().sessions[0]!.address, '127.0.0.1');
  t.is(licd.server.status().features[0]!.inUse, 0);
});

test('proxy_protocol: a peer that closes mid-header leaves nothing behind', async (t) => {
  const licd = await startLicd({ features: FEATURES, proxyProtocol: true });
  t.teardown(licd.stop);
  await new Promise<void>((resolve) => {
    const s = connect(licd.ports.license, '127.0.0.1', () => {
      s.write(encodeProxyV2({ address: '10.0.0.1', port: 1 }, { address: '10.0.0.2', port: 2 }).subarray(0, 20));
      s.end();
    });
    s.on('close', () => resolve());
    s.on('error', () => resolve());
  });
  await waitFor(() => licd.server.status().connections.license === 0);
  t.pass();
});
