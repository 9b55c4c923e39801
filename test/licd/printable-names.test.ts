/**
 * User, host and display names reach status text, STATUS json, logs and the terminals of whoever reads them:
 * C1 controls, bidi controls (which can make a forged line look like another user's) and invalid UTF-8 are
 * replaced by `?` before anything stores them. C0 controls and DEL make the whole line BAD_ARGUMENT.
 */
import test from 'ava';
import { printableName } from '../../src/licd/printable.ts';
import type { LicdStatus } from '../../src/licd/status.ts';
import { licdForTest } from '../helpers/licd.ts';

const BAD = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufffd]/;

test('printableName replaces controls, bidi controls, lone surrogates and U+FFFD; leaves other text alone', (t) => {
  t.is(printableName('alice'), 'alice');
  t.is(printableName('Jürgen-山田'), 'Jürgen-山田');
  t.is(printableName('😀'), '😀', 'a surrogate pair is a character');
  t.is(printableName('a\u202eevil\u202c'), 'a?evil?');
  t.is(printableName('\u2066x\u2069\u200e\u200f\u061c'), '?x????');
  t.is(printableName('a\u0085b\u009bc\u001b[31m'), 'a?b?c?[31m');
  t.is(printableName('bad\ufffd'), 'bad?');
  t.is(printableName('lone\ud800x\udc00'), 'lone?x?');
});

test('HELLO names with bidi controls, C1 controls and invalid UTF-8 show as ? in STATUS text and json', async (t) => {
  const { licd, connect } = await licdForTest(t, { name: 'primary', features: [{ name: 'LS-DYNA', count: 4 }] });
  const c = await connect(licd.ports.license);
  c.write(Buffer.concat([
    Buffer.from('HELLO user=eve\u202Enimda host=ws\u2066x'),
    Buffer.from([0xff, 0xfe, 0xc2]), // invalid UTF-8
    Buffer.from(' display=d\u0085\u009b1\n'),
  ]));
  t.is(await c.next(), 'OK server=primary proto=1');
  t.regex(await c.request('CHECKOUT LS-DYNA'), /^GRANTED /);
  t.is(await c.request('HELLO user=a\u001bb host=h'), 'ERR BAD_ARGUMENT', 'C0 controls: the line is refused');

  const text = [await c.request('STATUS'), ...(await c.readUntil('END'))].join('\n');
  t.false(BAD.test(text.replace(/\n/g, ' ')), JSON.stringify(text));
  t.true(text.includes('    eve?nimda ws?x??? d??1 (v1.0) (primary/'), text);
  const json = JSON.parse(await c.request('STATUS json')) as LicdStatus;
  t.like(json.sessions[0], { user: 'eve?nimda', host: 'ws?x???', display: 'd??1' });
  t.like(json.features[0]!.users[0], { user: 'eve?nimda', host: 'ws?x???', display: 'd??1' });
});
