import test from 'ava';
import { LineDecoder } from '../../src/common/line-decoder.ts';

function collect(max?: number) {
  const lines: string[] = [];
  const errors: string[] = [];
  const d = new LineDecoder({ onLine: (l) => void lines.push(l), onError: (e) => void errors.push(e) }, max);
  return { d, lines, errors };
}

test('splits lines, strips \\r\\n, handles several lines per chunk and lines split across chunks', (t) => {
  const { d, lines } = collect();
  d.write(Buffer.from('A\r\nB\nC'));
  d.write(Buffer.from('D'));
  d.write(Buffer.from('E\r'));
  d.write(Buffer.from('\n\nF\n'));
  t.deepEqual(lines, ['A', 'B', 'CDE', '', 'F']);
  t.is(d.pending, 0);
});

test('byte-at-a-time input gives the same lines, multi-byte UTF-8 split across chunks included', (t) => {
  const { d, lines } = collect();
  for (const b of Buffer.from('héllo wörld\r\n€\n')) d.write(Buffer.from([b]));
  t.deepEqual(lines, ['héllo wörld', '€']);
});

test('invalid UTF-8 and NUL never throw', (t) => {
  const { d, lines } = collect();
  d.write(Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x0a]));
  t.is(lines.length, 1);
  t.true(lines[0]!.includes('\ufffd'));
});

test('limit: exactly max bytes pass (with or without \\r), max+1 is LINE_TOO_LONG and stops the decoder', (t) => {
  const a = collect(8);
  a.d.write(Buffer.from('12345678\n1234'));
  a.d.write(Buffer.from('5678\r\n'));
  t.deepEqual(a.lines, ['12345678', '12345678']);
  const b = collect(8);
  b.d.write(Buffer.from('123456789\nOK\n'));
  t.deepEqual(b.errors, ['LINE_TOO_LONG']);
  t.deepEqual(b.lines, []);
  t.true(b.d.stopped);
  t.is(b.d.write(Buffer.from('more\n')), 0);
  const c = collect(8);
  c.d.write(Buffer.from('12345'));
  c.d.write(Buffer.from('67890'));
  t.deepEqual(c.errors, ['LINE_TOO_LONG'], 'reported before any newline arrives');
  const d = collect(8);
  d.d.write(Buffer.from('12345678\r'));
  d.d.write(Buffer.from('x'));
  t.deepEqual(d.errors, ['LINE_TOO_LONG'], 'a \\r not followed by \\n counts');
});

test('onLine returning false stops after that line; write returns the bytes read', (t) => {
  const lines: string[] = [];
  const d = new LineDecoder({ onLine: (l) => (lines.push(l), false), onError: () => {} });
  const chunk = Buffer.from('TOKENS primary.1a 4\r\nrest of the stream');
  const n = d.write(chunk);
  t.deepEqual(lines, ['TOKENS primary.1a 4']);
  t.is(chunk.subarray(n).toString(), 'rest of the stream');
  const e = new LineDecoder({ onLine: (l) => (lines.push(l), false), onError: () => {} });
  t.is(e.write(Buffer.from('TOKE')), 4);
  const tail = Buffer.from('NS h 1\nXYZ');
  t.is(tail.subarray(e.write(tail)).toString(), 'XYZ');
  t.is(lines.at(-1), 'TOKENS h 1');
  e.reset();
  t.false(e.stopped);
});
