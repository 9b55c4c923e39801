import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { findFeature, isLmstatOutput, parseLmstat } from '../../src/client/lmstat-parser.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/lmstat/', import.meta.url));
const fixture = (name: string) => readFileSync(FIXTURES + name, 'utf8');

const users = (s: ReturnType<typeof parseLmstat>) => s.features.reduce((n, f) => n + f.users.length, 0);
const reservations = (s: ReturnType<typeof parseLmstat>) => s.features.reduce((n, f) => n + f.reservations.length, 0);

test('app1: three servers on 27002, host2.domain.net is MASTER, one vendor daemon', (t) => {
  const s = parseLmstat(fixture('lmstat_app1.txt'));
  t.deepEqual(
    s.servers.map((x) => [x.host, x.port, x.up, x.master, x.version]),
    [
      ['host-1.domain.net', 27002, true, false, 'v11.7'],
      ['host2.domain.net', 27002, true, true, 'v11.7'],
      ['host3.domain.net', 27002, true, false, 'v11.7'],
    ],
  );
  t.is(s.master, 'host2.domain.net');
  t.true(s.up);
  t.deepEqual(s.vendors, [{ name: 'VENDOR1', up: true, version: 'v11.6', on: 'host2.domain.net' }]);
  t.deepEqual(s.errors, []);
});

test('app1: feature totals, user lines, reservations', (t) => {
  const s = parseLmstat(fixture('lmstat_app1.txt'));
  t.is(s.features.length, 54); // feature42 is listed twice in the capture, both are kept
  t.is(s.features.filter((f) => f.name === 'feature42').length, 2);
  t.is(users(s), 129);
  t.is(reservations(s), 332);

  const f1 = findFeature(s, 'feature1')!;
  t.is(f1.issued, 1814);
  t.is(f1.inUse, 1206);
  t.is(f1.version, '61.9');
  t.is(f1.vendor, 'VENDOR1');
  t.is(f1.type, 'floating');
  t.is(f1.users.length, 55);
  t.is(f1.reservations.length, 11);
  t.deepEqual(f1.reservations[0], { count: 1, type: 'HOST', target: 'HOSTPC11', server: 'host3.domain.net', port: 27002 });
  t.deepEqual(f1.reservations[2], { count: 48, type: 'GROUP', target: 'GROUP1', server: 'host3.domain.net', port: 27002 });
  t.is(f1.reservations.reduce((n, r) => n + r.count, 0), 1 + 10 + 48 + 8 + 8 + 7 + 8 + 10 + 8 + 8 + 16);
  t.deepEqual(f1.users[0], {
    user: 'USER9',
    host: 'SERVER45823008',
    display: 'SERVER45823008',
    version: '61.9',
    server: 'host3.domain.net',
    port: 27002,
    handle: '7086',
    start: 'Fri 10/20 16:44',
    count: 5,
  });

  t.is(findFeature(s, 'feature34')!.users.length, 51);
  t.is(findFeature(s, 'feature8')!.inUse, 1); // "Total of 1 license in use", singular
  t.is(findFeature(s, 'feature12')!.issued, 1); // "Total of 1 license issued", singular
  t.is(findFeature(s, 'feature11')!.issued, 16384);
});

test('app1: odd user lines (spaces in names, queued, no display, linger)', (t) => {
  const s = parseLmstat(fixture('lmstat_app1.txt'));
  const all = s.features.flatMap((f) => f.users);
  const jane = all.find((u) => u.user === 'Jane Doe Jr.')!;
  t.is(jane.host, 'jane');
  t.is(jane.version, '10.1');
  t.is(jane.start, 'Wed 7/4 11:55');

  const f5 = findFeature(s, 'feature5')!;
  t.is(f5.users.length, 4);
  const queued = f5.users.filter((u) => u.queued);
  t.is(queued.length, 2);
  t.deepEqual(
    queued.map((u) => [u.user, u.host, u.display, u.count, u.handle]),
    [
      ['user3', 'server6u065', 'fj209fj0', 1, '15480'],
      ['user3', 'server6u065', 'f2jf4_f2_', 1, '15480'],
    ],
  );

  const noDisplay = all.filter((u) => u.user === 'user11' && u.host === 'server19' && u.display === '');
  t.is(noDisplay.length, 2);
  t.is(noDisplay[0]!.count, 13);

  const lingering = all.filter((u) => u.linger);
  t.is(lingering.length, 2);
  t.deepEqual(lingering[0]!.linger, { remaining: 885098, total: 1340160 });
  t.is(lingering[1]!.count, 16);
});

test('app2: master host2, 10 features, singular issued, user counts', (t) => {
  const s = parseLmstat(fixture('lmstat_app2.txt'));
  t.deepEqual(s.servers.map((x) => [x.host, x.port, x.master]), [
    ['host1', 28000, false],
    ['host2', 28000, true],
    ['host3', 28000, false],
  ]);
  t.is(s.master, 'host2');
  t.deepEqual(s.vendors.map((v) => [v.name, v.up, v.version]), [['vendor1', true, 'v11.13']]);
  t.is(s.features.length, 10);
  t.is(users(s), 38);
  const f2 = findFeature(s, 'feature2')!;
  t.is(f2.issued, 144);
  t.is(f2.inUse, 22);
  t.is(f2.users.length, 22);
  t.is(f2.users[0]!.version, '31.000000');
  t.is(f2.users[0]!.count, 1); // no ", N licenses": one license
  t.is(findFeature(s, 'feature7')!.inUse, 1);
  t.is(findFeature(s, 'feature10')!.issued, 1);
});

test('app3: host1 MASTER, two vendor daemons, feature7 163 in use of 600', (t) => {
  const s = parseLmstat(fixture('lmstat_app3.txt'));
  t.is(s.master, 'host1');
  t.deepEqual(s.vendors.map((v) => [v.name, v.up, v.version]), [
    ['daemon1', true, 'v11.14'],
    ['DAEMON2', true, 'v11.13'],
  ]);
  t.is(s.features.length, 46);
  t.is(users(s), 168);
  const f7 = findFeature(s, 'feature7')!;
  t.is(f7.issued, 600);
  t.is(f7.inUse, 163);
  t.is(f7.version, '2017.12');
  t.is(findFeature(s, 'feature9')!.inUse, 39);
});

test('server_down: host3 cannot be reached, the set is still up with host2 MASTER', (t) => {
  const s = parseLmstat(fixture('lmstat_server_down.txt'));
  t.is(s.servers.length, 3);
  const host3 = s.servers.find((x) => x.host === 'host3')!;
  t.false(host3.up);
  t.false(host3.master);
  t.regex(host3.error!, /^Cannot connect to license server system/);
  t.is(s.master, 'host2');
  t.true(s.up);
  t.deepEqual(s.vendors.map((v) => [v.name, v.up, v.version]), [['daemon', true, 'v11.13.1']]);
  const f2 = findFeature(s, 'feature2')!;
  t.is(f2.inUse, 39);
  t.is(f2.expiry, '1-jan-0');
  t.is(f2.vendor, 'feature2');
});

test('server_up_win: indented server lines, two members, one MASTER', (t) => {
  const text = fixture('lmstat_server_up_win.txt');
  for (const variant of [text, text.replace(/\r?\n/g, '\r\n')]) {
    const s = parseLmstat(variant);
    t.deepEqual(s.servers.map((x) => [x.host, x.port, x.up, x.master, x.version]), [
      ['BVS15004', 7788, true, true, 'v11.12'],
      ['bvs15004', 7788, true, false, 'v11.12'],
    ]);
    t.is(s.master, 'BVS15004');
    t.deepEqual(s.vendors.map((v) => [v.name, v.up, v.version]), [['ptc_d', true, 'v11.14.0']]);
    t.deepEqual(s.features, []);
  }
});

test('every captured lmstat output parses, also with CRLF line endings, and is recognised as lmstat output', (t) => {
  // The real captures (test/fixtures/README.md); the hand-written ones are judged by the tests above.
  const files = readdirSync(FIXTURES).filter((f) => f.startsWith('lmstat_') && f.endsWith('.txt'));
  t.true(files.length >= 5);
  for (const f of files) {
    const text = fixture(f);
    const lf = parseLmstat(text);
    const crlf = parseLmstat(text.replace(/\r?\n/g, '\r\n'));
    t.deepEqual(crlf, lf, f);
    t.true(lf.servers.length > 0, f);
    t.true(isLmstatOutput(text), f);
  }
});

test('licd format (SPEC 4.2 example)', (t) => {
  const s = parseLmstat(fixture('licd_spec.txt'));
  t.deepEqual(s.servers, [{ host: 'primary', port: 27101, up: true, master: true, version: 'v1.0' }]);
  t.is(s.master, 'primary');
  t.deepEqual(s.vendors, [{ name: 'licd', up: true, version: 'v1.0', on: 'primary' }]);
  t.deepEqual(s.features, [
    {
      name: 'LS-DYNA',
      issued: 50,
      inUse: 3,
      version: '2025.1',
      vendor: 'licd',
      expiry: '31-dec-2027',
      type: 'floating',
      reservations: [],
      users: [
        {
          user: 'alice',
          host: 'ws12',
          display: '/dev/pts/1',
          version: '2025.1',
          server: 'primary',
          port: 27101,
          handle: 'primary.1a',
          start: 'Sun 11/22 14:03',
          count: 1,
        },
      ],
    },
  ]);
});

test('licd triad member: no MASTER, redundancy line, plural licenses', (t) => {
  const s = parseLmstat(fixture('licd_triad.txt'));
  t.is(s.master, undefined);
  t.true(s.up);
  t.deepEqual(s.redundancy, { mode: 'triad', state: 'paired and synced', raw: 'Redundancy: triad, paired and synced' });
  t.is(findFeature(s, 'LS-DYNA')!.users[0]!.count, 2);
  t.is(findFeature(s, 'MPPDYNA')!.issued, 1024);
  for (const line of ['Pair status: peer not available', 'Redundancy: backup, not synced', 'recovering']) {
    t.is(parseLmstat(`primary: license server UP v1.0\n${line}\n`).redundancy?.state, line.replace(/^.*[:,] /, ''));
  }
});

test('licd queued user line (no handle) counts as queued, not in use', (t) => {
  const s = parseLmstat(
    [
      'License server status: 27101@primary',
      'primary: license server UP (MASTER) v1.0',
      'Users of LS-DYNA:  (Total of 1 license issued;  Total of 1 license in use)',
      '  "LS-DYNA" v2025.1, vendor: licd',
      '  floating license',
      '    alice ws12 /dev/pts/1 (v2025.1) (primary/27101 primary.1a), start Sun 11/22 14:03, 1 license',
      '    bob ws13 /dev/pts/2 (v2025.1) (primary/27101) queued for 2 licenses',
      'END',
    ].join('\n'),
  );
  const users = findFeature(s, 'LS-DYNA')!.users;
  t.is(users.length, 2);
  t.like(users[1], { user: 'bob', host: 'ws13', display: '/dev/pts/2', server: 'primary', port: 27101, handle: '', queued: true, count: 2 });
  t.is(users[1]!.start, undefined);
});

test('FlexNet variants: uncounted node-locked, Error lines, vendor daemon down, CRLF', (t) => {
  const s = parseLmstat(fixture('flexnet_mixed.txt'));
  t.is(s.master, 'lic01');
  t.deepEqual(s.vendors.map((v) => [v.name, v.up]), [
    ['ansyslmd', true],
    ['cdslmd', false],
  ]);
  const viewer = findFeature(s, 'viewer')!;
  t.true(viewer.uncounted);
  t.is(viewer.issued, 0);
  t.is(viewer.inUse, 2);
  t.is(viewer.type, 'uncounted nodelocked');
  t.is(viewer.expiry, 'permanent(no expiration date)');
  const solver = findFeature(s, 'solver')!;
  t.is(solver.issued, 1);
  t.is(solver.inUse, 1);
  t.is(solver.expiry, '1-mar-2020');
  t.is(solver.users[0]!.start, 'Mon 3/4 9:58');
  t.regex(findFeature(s, 'mesher')!.error!, /^Error: 2 licenses/);
  t.regex(findFeature(s, 'cds_tool')!.error!, /^Error getting status/);
});

test('a server that is entirely down: not up, no master, errors kept', (t) => {
  const s = parseLmstat(fixture('flexnet_all_down.txt'));
  t.false(s.up);
  t.is(s.master, undefined);
  t.deepEqual(s.servers, [{ host: 'deadhost', port: 27000, up: false, master: false }]);
  t.is(s.errors.length, 2);
  t.regex(s.errors[0]!, /^Error getting status/);
});

test('DOWN server line and garbage never throw', (t) => {
  const down = parseLmstat('License server status: 27101@primary\nprimary: license server DOWN v1.0\nEND\n');
  t.false(down.up);
  t.false(down.servers[0]!.up);
  const inputs: unknown[] = [
    '',
    'hello\nworld',
    '\u0000\u0001\u0002',
    'Users of :  ()',
    'Users of x:  (Total of abc licenses issued)',
    '    a (v) (/)',
    'x'.repeat(100_000),
    '\n'.repeat(10_000),
    'License server status: @,@@,27000@',
    undefined,
    null,
    42,
  ];
  for (const input of inputs) {
    t.notThrows(() => parseLmstat(input as string));
    t.notThrows(() => isLmstatOutput(input as string));
  }
  t.deepEqual(parseLmstat('hello\nworld').features, []);
});

test('isLmstatOutput tells lmstat output from other stdout', (t) => {
  t.true(isLmstatOutput(fixture('licd_spec.txt')));
  t.true(isLmstatOutput('Users of X:  (Uncounted, node-locked)\n'));
  t.false(isLmstatOutput('OK\n'));
  t.false(isLmstatOutput('{"servers":[]}'));
  t.false(isLmstatOutput('license check passed\n'));
  t.false(isLmstatOutput(''));
});
