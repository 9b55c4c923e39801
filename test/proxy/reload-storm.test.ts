/**
 * The campaign's reload storm through the real process: 500 licenses held through `licproxy run` while the file
 * is rewritten and SIGHUP sent 100 times in a row (each reload changes a weight and adds or removes a frontend).
 * Not one held connection drops, every one still heartbeats through the balancer, and licd still counts 500.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { LineClient, startLicd } from '../helpers/licd.ts';
import { spawnLicproxy } from '../helpers/licproxy-run.ts';
import { freePorts } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

const HELD = 500;
const RELOADS = 100;

test(`${HELD} held licenses survive ${RELOADS} SIGHUP reloads in a row through licproxy run: 0 dropped`, async (t) => {
  t.timeout(240_000);
  const licd = await startLicd({ features: [{ name: 'LS-DYNA', count: HELD + 10 }] });
  t.teardown(licd.stop);
  const [fePort, extraPort] = (await freePorts(2)) as [number, number];
  const dir = mkdtempSync(join(tmpdir(), 'reload-storm-'));
  const file = join(dir, 'licproxy.yaml');
  const yaml = (i: number): string =>
    `global: { log_level: info }\npools:\n  lic:\n    check: { type: none }\n    servers:\n      - { name: licd, address: 127.0.0.1:${licd.ports.license}, weight: ${1 + (i % 7)} }\n` +
    `frontends:\n  - { name: lic, listen: 127.0.0.1:${fePort}, pool: lic }\n` +
    (i % 2 ? `  - { name: extra, listen: 127.0.0.1:${extraPort}, pool: lic }\n` : '');
  writeFileSync(file, yaml(0));
  const p = spawnLicproxy(t, file, () => rmSync(dir, { recursive: true, force: true }));
  const count = (msg: string): number => p.lines().filter((l) => l.msg === msg).length;
  await waitFor(() => count('licproxy running') === 1, { timeout: 20_000, what: 'licproxy running' });

  const clients: LineClient[] = [];
  t.teardown(() => clients.forEach((c) => c.destroy()));
  for (let i = 0; i < HELD; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, HELD - i) }, async (_, k) => {
        const c = await LineClient.connect(fePort);
        clients.push(c);
        return (await c.request(`HELLO user=u${i + k} host=h${i + k}`)).startsWith('OK') && (await c.request('CHECKOUT LS-DYNA')).startsWith('GRANTED');
      }),
    );
    t.true(batch.every(Boolean), `batch ${i}`);
  }

  const before = count('configuration reloaded');
  for (let i = 1; i <= RELOADS; i++) {
    writeFileSync(file, yaml(i));
    p.child.kill('SIGHUP');
    await waitFor(() => count('configuration reloaded') >= before + i || count('reload failed: keeping the running configuration') > 0, {
      timeout: 20_000,
      what: `reload ${i}`,
    });
  }
  t.is(count('reload failed: keeping the running configuration'), 0);
  t.is(count('configuration reloaded') - before, RELOADS);
  t.is(clients.filter((c) => c.isClosed).length, 0, 'no held connection dropped');
  for (let i = 0; i < HELD; i += 100) {
    const answers = await Promise.all(clients.slice(i, i + 100).map((c) => c.request('HEARTBEAT', 20_000)));
    t.is(answers.filter((a) => a !== 'OK').length, 0, `heartbeats ${i}..${i + 99}`);
  }
  t.is(licd.server.status().features.find((f) => f.name === 'LS-DYNA')!.inUse, HELD);
  t.is(p.child.exitCode, null);
  t.is(p.stderr(), '');
});
