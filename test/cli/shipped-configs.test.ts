import test from 'ava';
import { readdirSync } from 'node:fs';
import { LICPROXY, REPO, runBin } from '../helpers/cli.ts';

// Every balancer configuration the repository ships must pass `licproxy check` as it stands.
const files = [
  'conf/licproxy.yaml',
  ...readdirSync(`${REPO}/conf`).filter((f) => f === 'demo.yaml').map((f) => `conf/${f}`),
  ...readdirSync(`${REPO}/conf/examples`).filter((f) => f.endsWith('.yaml')).map((f) => `conf/examples/${f}`),
];

test('the repository ships the six SPEC 7 deployment examples', (t) => {
  for (const name of ['lmx-active-passive', 'lmx-active-active', 'lsdyna-tokens', 'flexlm-triad', 'backup-pair', 'geo-sites']) {
    t.true(files.includes(`conf/examples/${name}.yaml`), name);
  }
});

for (const file of files) {
  test(`licproxy check accepts ${file}`, async (t) => {
    const r = await runBin(LICPROXY, ['check', '-c', file]);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, 'configuration is valid\n');
  });
}
