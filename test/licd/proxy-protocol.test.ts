import test from 'ava';
import { PROXY_V2_SIGNATURE, decodeProxyHeader, encodeProxyV1, encodeProxyV2 } from '../../src/common/proxy-protocol.ts';

const SRC4 = { address: '10.1.2.3', port: 40000 };
const DST4 = { address: '10.9.9.9', port: 31010 };
const SRC6 = { address: '2001:db8::1', port: 1234 };
const DST6 = { address: '::1', port: 27101 };

test('v1 encodes TCP4, TCP6 and UNKNOWN', (t) => {
  t.is(encodeProxyV1(SRC4, DST4).toString(), 'PROXY TCP4 10.1.2.3 10.9.9.9 40000 31010\r\n');
  t.is(encodeProxyV1(SRC6, DST6).toString(), 'PROXY TCP6 2001:db8::1 ::1 1234 27101\r\n');
  t.is(encodeProxyV1({ address: '::ffff:10.1.2.3', port: 1 }, DST4).toString(), 'PROXY TCP4 10.1.2.3 10.9.9.9 1 31010\r\n', 'IPv4-mapped unmapped');
  t.is(encodeProxyV1().toString(), 'PROXY UNKNOWN\r\n');
});

test('v1 and v2 round-trip through the decoder, TCP4 and TCP6', (t) => {
  for (const enc of [encodeProxyV1, encodeProxyV2]) {
    for (const [s, d] of [[SRC4, DST4], [SRC6, DST6], [{ address: 'fe80::1:2:3:4', port: 0 }, { address: '::', port: 65535 }]] as const) {
      const buf = Buffer.concat([enc(s, d), Buffer.from('HELLO\n')]);
      const r = decodeProxyHeader(buf);
      if (r.kind !== 'ok') return t.fail(JSON.stringify(r));
      t.deepEqual(r.source, s);
      t.deepEqual(r.destination, d);
      t.is(buf.subarray(r.consumed).toString(), 'HELLO\n');
      t.is(r.command, 'PROXY');
    }
  }
});

test('v2 mixed families are sent as TCP6; LOCAL has no addresses', (t) => {
  const r = decodeProxyHeader(encodeProxyV2(SRC4, DST6));
  t.like(r, { kind: 'ok', version: 2, source: { address: '::ffff:10.1.2.3', port: 40000 } });
  const local = encodeProxyV2();
  t.is(local.length, 16);
  t.true(local.subarray(0, 12).equals(PROXY_V2_SIGNATURE));
  t.like(decodeProxyHeader(local), { kind: 'ok', command: 'LOCAL', source: null, consumed: 16 });
});

test('the decoder asks for more bytes until the header is complete, at every split point', (t) => {
  for (const h of [encodeProxyV1(SRC6, DST6), encodeProxyV2(SRC6, DST6)]) {
    for (let i = 0; i < h.length; i++) t.is(decodeProxyHeader(h.subarray(0, i)).kind, 'more', `${i} bytes`);
    t.is(decodeProxyHeader(h).kind, 'ok');
  }
});

test('v2 TLVs after the addresses are skipped', (t) => {
  const h = encodeProxyV2(SRC4, DST4);
  const tlv = Buffer.from([0x04, 0x00, 0x03, 0x61, 0x62, 0x63]);
  const withTlv = Buffer.concat([h, tlv]);
  withTlv.writeUInt16BE(h.length - 16 + tlv.length, 14);
  t.like(decodeProxyHeader(Buffer.concat([withTlv, Buffer.from('X')])), { kind: 'ok', consumed: withTlv.length, source: SRC4 });
});

test('clear errors for what is not a valid header', (t) => {
  const bad: Array<[string | Buffer, RegExp]> = [
    ['HELLO user=a\n', /not a PROXY protocol header/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n', /CRLF/],
    ['PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n', /TCP4\|TCP6/],
    ['PROXY TCP4 1.2.3.4 ::1 1 2\r\n', /not TCP4 addresses/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 70000\r\n', /ports/],
    ['PROXY TCP4 ' + 'x'.repeat(120), /longer than 107/],
    [Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x31, 0x11, 0, 12])]), /version 3/],
    [Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x2f, 0x11, 0, 12])]), /unknown command/],
    [Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x21, 0x11, 0, 4, 1, 2, 3, 4])]), /too short/],
    [Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x01]), /not a PROXY protocol header/],
  ];
  for (const [input, msg] of bad) {
    const r = decodeProxyHeader(Buffer.isBuffer(input) ? input : Buffer.from(input, 'latin1'));
    t.is(r.kind, 'error', String(input));
    if (r.kind === 'error') t.regex(r.message, msg);
  }
  t.like(decodeProxyHeader(Buffer.from('PROXY UNKNOWN ffff::1 ::1 1 2\r\n')), { kind: 'ok', command: 'LOCAL' });
});
