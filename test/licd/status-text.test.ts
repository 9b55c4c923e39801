import test from 'ava';
import { publicHandle } from '../../src/licd/handles.ts';
import { lmstatDate, lmstatStart, renderStatusText } from '../../src/licd/status-text.ts';
import type { LicdStatus } from '../../src/licd/status.ts';
import { LineClient, startLicd } from '../helpers/licd.ts';

test('renders the SPEC 4.2 example exactly', (t) => {
  const s: LicdStatus = {
    server: 'primary',
    version: '1.0',
    up: true,
    master: true,
    host: '127.0.0.1',
    ports: { license: 27101, tokens: 27102 },
    features: [
      {
        name: 'LS-DYNA',
        version: '2025.1',
        kind: 'seats',
        issued: 50,
        inUse: 3,
        queued: 0,
        expires: '2027-12-31',
        expired: false,
        users: [
          { user: 'alice', host: 'ws12', display: '/dev/pts/1', version: '2025.1', handle: 'primary.1a', port: 27101, start: new Date(2026, 10, 22, 14, 3).getTime(), count: 1, queued: false },
        ],
      },
    ],
    sessions: [],
    connections: { license: 1, tokens: 0 },
  };
  t.is(
    renderStatusText(s),
    [
      'License server status: 27101@primary',
      'primary: license server UP (MASTER) v1.0',
      'Vendor daemon status (on primary):',
      '  licd: UP v1.0',
      'Users of LS-DYNA:  (Total of 50 licenses issued;  Total of 3 licenses in use)',
      '  "LS-DYNA" v2025.1, vendor: licd, expiry: 31-dec-2027',
      '  floating license',
      '    alice ws12 /dev/pts/1 (v2025.1) (primary/27101 primary.1a), start Sun 11/22 14:03, 1 license',
      'END',
      '',
    ].join('\n'),
  );
});

test('dates and stamps are written as lmstat does', (t) => {
  t.is(lmstatDate('2027-12-31'), '31-dec-2027');
  t.is(lmstatDate('2030-01-05'), '5-jan-2030');
  t.is(lmstatStart(new Date(2017, 9, 20, 8, 3).getTime()), 'Fri 10/20 8:03');
});

test('a live daemon: singular/plural, expiry only where set, idle features listed, END last', async (t) => {
  const licd = await startLicd({
    name: 'primary',
    features: [
      { name: 'ONE', version: '3.2', count: 1, expires: '2099-01-01' },
      { name: 'MANY', count: 2 },
    ],
  });
  t.teardown(licd.stop);
  const c = await LineClient.connect(licd.ports.license);
  t.teardown(() => c.destroy());
  await c.request('HELLO user=bob host=ws1 display=:0');
  const h = /handle=(\S+)/.exec(await c.request('CHECKOUT ONE'))![1]!;
  c.send('STATUS');
  const lines = await c.readUntil('END');
  const p = licd.ports.license;
  t.deepEqual(lines.slice(0, 4), [
    `License server status: ${p}@primary`,
    'primary: license server UP (MASTER) v1.0',
    'Vendor daemon status (on primary):',
    '  licd: UP v1.0',
  ]);
  t.is(lines[4], 'Users of ONE:  (Total of 1 license issued;  Total of 1 license in use)');
  t.is(lines[5], '  "ONE" v3.2, vendor: licd, expiry: 1-jan-2099');
  t.regex(lines[7]!, new RegExp(`^    bob ws1 :0 \\(v3\\.2\\) \\(primary/${p} ${publicHandle(h).replace('.', '\\.')}\\), start \\w{3} \\d{1,2}/\\d{1,2} \\d{1,2}:\\d\\d, 1 license$`));
  t.deepEqual(lines.slice(8), [
    'Users of MANY:  (Total of 2 licenses issued;  Total of 0 licenses in use)',
    '  "MANY" v1.0, vendor: licd',
    '  floating license',
    'END',
  ]);
});
