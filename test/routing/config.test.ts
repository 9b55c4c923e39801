/** The SPEC 8 keys of licproxy.yaml: defaults, and one clear line naming where for each kind of bad input. */
import test from 'ava';
import { ConfigError, formatIssue } from '../../src/common/errors.ts';
import { parseProxyConfig } from '../../src/config/proxy-schema.ts';

const base = (pool: string, server = '') => `pools:
  lic:
${pool}
    servers:
      - { name: a, address: 127.0.0.1:6200${server} }
frontends:
  - { name: lic, listen: 127.0.0.1:31010, pool: lic }
`;

function errors(yaml: string): string[] {
  try {
    parseProxyConfig('t.yaml', yaml);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map(formatIssue);
    throw err;
  }
  return [];
}

test('SPEC 8 keys parse: balance seats, feature, overflow, failover delay, failback steps, server features', (t) => {
  const c = parseProxyConfig(
    't.yaml',
    base(
      `    balance: seats
    feature: CFD
    overflow: { above: 80% }
    failover: { delay: 30s }
    failback: { steps: [25%, 50%, 75%, 100%], step_interval: 2m }`,
      ', features: [CFD, PRE]',
    ),
  );
  const p = c.pools[0]!;
  t.like(p, { balance: 'seats', feature: 'CFD', overflow: { above: 0.8 }, failover: { delay: 30_000 } });
  t.deepEqual(p.failback.steps, [0.25, 0.5, 0.75, 1]);
  t.is(p.failback.stepInterval, 120_000);
  t.deepEqual(p.servers[0]!.features, ['CFD', 'PRE']);
});

test('defaults: no feature, no overflow, no failover delay, failback all at once', (t) => {
  const p = parseProxyConfig('t.yaml', base('    mode: balance')).pools[0]!;
  t.like(p, { feature: null, overflow: null, failover: { delay: 0 } });
  t.deepEqual(p.failback.steps, []);
  t.deepEqual(p.servers[0]!.features, []);
});

test('overflow and failover may sit in defaults and are inherited', (t) => {
  const c = parseProxyConfig('t.yaml', `defaults:\n  overflow: { above: 90% }\n  failover: { delay: 5s }\n${base('    mode: balance')}`);
  t.like(c.pools[0], { overflow: { above: 0.9 }, failover: { delay: 5_000 } });
});

test('bad input: one line each, naming the YAML path and line:column', (t) => {
  const cases: [string, RegExp][] = [
    ['    overflow: { above: 0.8 }', /t\.yaml:3:\d+ pools\.lic\.overflow\.above: must be a percentage from 0% to 100%, e\.g\. 80%; got 0\.8/],
    ['    overflow: { above: 180% }', /pools\.lic\.overflow\.above: must be a percentage/],
    ['    overflow: {}', /pools\.lic\.overflow\.above: is required/],
    ['    failover: { delay: 30 }', /pools\.lic\.failover\.delay/],
    ['    failback: { steps: [50%, 25%, 100%] }', /pools\.lic\.failback\.steps\[1\]: steps must not decrease/],
    ['    failback: { steps: [25%, 50%] }', /pools\.lic\.failback\.steps: the last step must be 100%/],
    ['    balance: seat', /pools\.lic\.balance: .*seats/],
    ['    overflow: { above: 80%, below: 10% }', /pools\.lic\.overflow\.below/],
  ];
  for (const [pool, re] of cases) {
    const e = errors(base(pool));
    t.is(e.length, 1, `${pool}: ${e.join(' | ')}`);
    t.regex(e[0] ?? '', re, pool);
  }
});

test('a feature no server serves is a warning, not an error; a server without features: checked by lmstat gets the benefit of the doubt', (t) => {
  const warned = parseProxyConfig('t.yaml', base('    feature: X\n    check: { type: tcp }'));
  t.is(warned.warnings?.length, 1);
  t.regex(formatIssue(warned.warnings![0]!), /t\.yaml:3:\d+ pools\.lic\.feature: feature "X" is served by no server of pool lic/);
  t.is(parseProxyConfig('t.yaml', base('    feature: X\n    check: { type: lmstat }')).warnings, undefined);
  t.is(parseProxyConfig('t.yaml', base('    feature: X\n    check: { type: tcp }', ', features: [X]')).warnings, undefined);
});
