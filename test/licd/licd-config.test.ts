import test from 'ava';
import { ConfigError } from '../../src/common/errors.ts';
import { loadLicdConfig, parseLicdConfig } from '../../src/config/licd-config.ts';

function issues(text: string): string[] {
  try {
    parseLicdConfig(text, 'conf/licd/a.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n');
    throw err;
  }
  return [];
}

test('the shipped conf/licd files load: three loopback servers with LS-DYNA, MPPDYNA and PRE-POST', (t) => {
  const expected = { primary: [27101, 27102], secondary: [27111, 27112], tertiary: [27121, 27122] };
  for (const [name, [license, tokens]] of Object.entries(expected)) {
    const c = loadLicdConfig(`conf/licd/${name}.yaml`);
    t.is(c.server.name, name);
    t.is(c.server.host, '127.0.0.1');
    t.deepEqual(c.server.ports, { license, tokens, peer: null });
    t.deepEqual(
      c.features.map((f) => [f.name, f.count, f.kind]),
      [['LS-DYNA', 50, 'seats'], ['MPPDYNA', 1024, 'tokens'], ['PRE-POST', 10, 'seats']],
    );
    t.is(c.server.heartbeatTimeout, 600_000);
    t.true(Object.isFrozen(c.features[0]));
  }
});

test('the SPEC 4 example parses, with defaults and redundancy stored', (t) => {
  const c = parseLicdConfig(`
server:
  name: primary
  host: 127.0.0.1
  ports: { license: 27101, tokens: 27102 }
  allow: [127.0.0.0/8]
  proxy_protocol: false
  heartbeat_timeout: 10m
features:
  - { name: LS-DYNA, version: "2025.1", count: 50, expires: 2027-12-31 }
  - { name: MPPDYNA, count: 1024, kind: tokens }
redundancy:
  mode: triad
  peers: [ "127.0.0.1:27111", "127.0.0.1:27121" ]
  order: 0
`);
  t.deepEqual(c.server.allow, ['127.0.0.0/8']);
  t.like(c.features[0], { name: 'LS-DYNA', version: '2025.1', count: 50, expires: '2027-12-31', kind: 'seats' });
  t.is(c.features[0]!.expiresAt, new Date(2028, 0, 1).getTime(), 'valid through the expiry day');
  t.like(c.features[1], { version: '1.0', expires: null, expiresAt: null, kind: 'tokens' });
  t.like(c.redundancy, { mode: 'triad', order: 0, secretFile: null });
  t.deepEqual(c.redundancy!.peers, [{ host: '127.0.0.1', port: 27111 }, { host: '127.0.0.1', port: 27121 }]);
  const min = parseLicdConfig('server: { name: a, ports: { license: 0, tokens: 0 } }\nfeatures: []\n');
  t.like(min.server, { host: '127.0.0.1', allow: null, proxyProtocol: false, heartbeatTimeout: 600_000 });
  t.is(min.redundancy, null);
});

test('every error is reported with file:line:col and YAML path, in file order', (t) => {
  const text = [
    'server:', //                                      1
    '  name: pri.mary', //                             2
    '  ports: { license: 70000, tokens: 1 }', //      3
    '  heartbeat_timeout: 30', //                      4
    '  alow: [1.2.3.4/8]', //                          5
    'features:', //                                    6
    '  - { name: A, count: 1.5 }', //                  7
    '  - { name: B, count: -1, kind: seat }', //       8
    '  - { name: A, count: 2, version: 2025.1 }', //   9
    '  - { name: C, count: 2, expires: 2027-02-30 }', // 10
    '  - { name: D, count: 2, expires: tomorrow, version: "x1" }', // 11
    'redundancy: { mode: pair, peers: [nohost], order: 5 }', // 12
  ].join('\n');
  t.deepEqual(issues(text), [
    'conf/licd/a.yaml:2:9 server.name: "pri.mary" is not valid: letters, digits, "_" and "-" only (handles are <name>.<id>)',
    'conf/licd/a.yaml:3:21 server.ports.license: must be a whole number 0..65535, got 70000',
    'conf/licd/a.yaml:4:22 server.heartbeat_timeout: a duration needs a unit: write "30s" or "30ms" (units: ms, s, m, h, d)',
    'conf/licd/a.yaml:5:3 server.alow: unknown key "alow"; did you mean "allow"?',
    'conf/licd/a.yaml:7:23 features[0].count: must be a whole number >= 0, got 1.5',
    'conf/licd/a.yaml:8:23 features[1].count: must be a whole number >= 0, got -1',
    'conf/licd/a.yaml:8:33 features[1].kind: must be one of seats | tokens, got "seat"; did you mean "seats"?',
    'conf/licd/a.yaml:9:13 features[2].name: duplicate feature name "A" (first defined at line 7)',
    'conf/licd/a.yaml:9:35 features[2].version: write the version in quotes ("2025.1"): YAML reads an unquoted 2025.10 as 2025.1',
    'conf/licd/a.yaml:10:35 features[3].expires: "2027-02-30" is not a calendar date',
    'conf/licd/a.yaml:11:35 features[4].expires: expected a date YYYY-MM-DD such as 2027-12-31, got "tomorrow"',
    'conf/licd/a.yaml:11:54 features[4].version: "x1" is not valid: expected a dotted number such as "2025.1"',
    'conf/licd/a.yaml:12:21 redundancy.mode: must be one of backup | triad, got "pair"',
    'conf/licd/a.yaml:12:35 redundancy.peers[0]: expected host:port (IPv6 as [::1]:port), got "nohost"',
    'conf/licd/a.yaml:12:51 redundancy.order: must be a whole number 0..2, got 5',
  ]);
});

test('missing sections and wrong peer counts are errors', (t) => {
  t.deepEqual(issues('features: []\n'), ['conf/licd/a.yaml:1:1 server: is required']);
  t.deepEqual(issues('server: { name: a, ports: { license: 1 } }\n'), [
    'conf/licd/a.yaml:1:1 features: is required: a list of { name, count } entries',
  ]);
  t.deepEqual(issues('server: { name: a, ports: { tokens: 2 } }\nfeatures: []\n'), ['conf/licd/a.yaml:1:27 server.ports.license: is required']);
  t.deepEqual(issues('server: { name: a, ports: { license: 1, tokens: 2 } }\nfeatures: []\nredundancy: { mode: backup, peers: ["h:1", "h:2"] }\n'), [
    'conf/licd/a.yaml:3:36 redundancy.peers: backup needs exactly 1 peer, got 2',
  ]);
});

test('an unreadable file is LPX_ERR_CONFIG_READ', (t) => {
  t.throws(() => loadLicdConfig('conf/licd/does-not-exist.yaml'), { code: 'LPX_ERR_CONFIG_READ', message: /no such file/ });
});
