/**
 * A reload onto a hostile file (far too large, or slow to parse) through `licproxy run` and SIGHUP: the file is
 * refused with one line, the running configuration stays, and while the slow file is being parsed the balancer
 * keeps forwarding (held licenses heartbeat through it) and /health keeps answering.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { MAX_CONFIG_BYTES } from '../../src/config/yaml-bounds.ts';
import { LineClient, startLicd } from '../helpers/licd.ts';
import { spawnLicproxy } from '../helpers/licproxy-run.ts';
import { freePorts } from '../helpers/ports.ts';
import { request } from '../helpers/stats.ts';
import { waitFor } from '../helpers/wait.ts';

const HELD = 40;

test('SIGHUP onto an oversized file, then onto a slow one: refused, held licenses and /health answer throughout', async (t) => {
  t.timeout(120_000);
  const licd = await startLicd({ features: [{ name: 'LS-DYNA', count: HELD + 5 }] });
  t.teardown(licd.stop);
  const [fePort, statsPort] = (await freePorts(2)) as [number, number];
  const dir = mkdtempSync(join(tmpdir(), 'hostile-reload-'));
  const file = join(dir, 'licproxy.yaml');
  const valid = `stats:\n  listen: 127.0.0.1:${statsPort}\npools:\n  lic:\n    check: { type: none }\n    servers:\n      - { name: licd, address: 127.0.0.1:${licd.ports.license} }\nfrontends:\n  - { name: lic, listen: 127.0.0.1:${fePort}, pool: lic }\n`;
  writeFileSync(file, valid);
  const p = spawnLicproxy(t, file, () => rmSync(dir, { recursive: true, force: true }));
  const stats = { host: '127.0.0.1', port: statsPort };
  const count = (msg: string): number => p.lines().filter((l) => l.msg === msg).length;
  await waitFor(() => count('licproxy running') === 1, { timeout: 20_000, what: 'licproxy running' });
  await waitFor(async () => (await request(stats, '/health')).status === 200, { timeout: 10_000, what: '/health' });

  const clients: LineClient[] = [];
  t.teardown(() => clients.forEach((c) => c.destroy()));
  for (let i = 0; i < HELD; i++) {
    const c = await LineClient.connect(fePort);
    clients.push(c);
    t.regex(await c.request('CHECKOUT LS-DYNA'), /^GRANTED/);
  }

  // 1. Far above the limit: refused at once, with the one line naming the file and its size.
  writeFileSync(file, Buffer.alloc(MAX_CONFIG_BYTES * 8, 0x20));
  p.child.kill('SIGHUP');
  await waitFor(() => count('reload failed: keeping the running configuration') === 1, { timeout: 20_000, what: 'first reload refused' });
  const sizeLine = await waitFor(() => p.lines().find((l) => typeof l.msg === 'string' && /above the limit/.test(l.msg)));
  t.is(sizeLine.msg, `${file}: configuration is ${MAX_CONFIG_BYTES * 8} bytes, above the limit of ${MAX_CONFIG_BYTES} (1 MiB): not parsed`);

  // 2. Just under the limit, and slow to read: one map of duplicate keys (seconds of parsing).
  writeFileSync(file, `global:\n${'  a: 1\n'.repeat(Math.floor((MAX_CONFIG_BYTES - 4096) / 7))}`);
  p.child.kill('SIGHUP');
  // The SIGHUP line leaves the process within 100 ms of being logged, unless the parse blocks the thread that
  // logs it; then it would arrive together with the outcome.
  await waitFor(() => count('SIGHUP: reloading the configuration') === 2, { timeout: 20_000, what: 'second SIGHUP logged' });
  let healthDuring = 0;
  let heartbeatsDuring = 0;
  const deadline = Date.now() + 60_000;
  for (let i = 0; count('reload failed: keeping the running configuration') < 2 && Date.now() < deadline; i++) {
    const [health, beat] = await Promise.all([request(stats, '/health', { timeoutMs: 60_000 }), clients[i % HELD]!.request('HEARTBEAT', 60_000)]);
    if (count('reload failed: keeping the running configuration') >= 2) break;
    if (health.status === 200) healthDuring++;
    if (beat === 'OK') heartbeatsDuring++;
  }
  t.is(count('reload failed: keeping the running configuration'), 2, 'the slow file was refused');
  t.true(healthDuring > 0, '/health answered while the file was being parsed');
  t.true(heartbeatsDuring > 0, 'held licenses heartbeat through the balancer while the file was being parsed');
  t.true(p.lines().some((l) => typeof l.msg === 'string' && l.msg.endsWith('YAML: Map keys must be unique')));

  // The running configuration stayed: every held license answers, none lost its seat, new clients get through.
  const beats = await Promise.all(clients.map((c) => c.request('HEARTBEAT')));
  t.true(beats.every((b) => b === 'OK'));
  t.is(licd.server.status().features.find((f) => f.name === 'LS-DYNA')!.inUse, HELD);
  const fresh = await LineClient.connect(fePort);
  clients.push(fresh);
  t.regex(await fresh.request('CHECKOUT LS-DYNA'), /^GRANTED/);
  t.is(p.child.exitCode, null);
  t.is(p.stderr(), '');
});
