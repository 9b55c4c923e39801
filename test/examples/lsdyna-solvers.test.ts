/**
 * conf/examples/lsdyna-solvers.yaml as written (SPEC 8.2, LS-DYNA solver-aware routing on one port), against the
 * shipped licd files in conf/examples/licd/ run as real processes: every solver's checkout reaches a server that has
 * it, and when explicit-1 is killed the EXPLICIT clients go to the backup explicit-2 without one failed checkout,
 * then come back to explicit-1 once it is up again. Only the frontend moves to an ephemeral loopback port.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import YAML from 'yaml';
import { silentLogger } from '../../src/common/logger.ts';
import { parseProxyConfig } from '../../src/config/proxy-schema.ts';
import { createMonitorFactory } from '../../src/health/health-monitor.ts';
import { ProxyApp } from '../../src/proxy/app.ts';
import { LICD, REPO } from '../helpers/cli.ts';
import { LineClient } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';
import { freePort } from '../helpers/ports.ts';

const FILES = ['solver-explicit-1.yaml', 'solver-explicit-2.yaml', 'solver-implicit.yaml', 'solver-em-thermal.yaml'];

function runLicd(file: string): { child: ChildProcess; port: number; stop: () => Promise<void> } {
  const doc = YAML.parse(readFileSync(join(REPO, 'conf/examples/licd', file), 'utf8')) as { server: { ports: { license: number } } };
  const child = spawn(process.execPath, [LICD, '-c', join('conf/examples/licd', file), '--log-level', 'warn'], { cwd: REPO, stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  return {
    child,
    port: doc.server.ports.license,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

async function checkout(port: number, feature: string): Promise<string> {
  const c = await LineClient.connect(port);
  try {
    c.send('HELLO user=eng host=ws');
    c.send(`CHECKOUT ${feature}`);
    await c.next(10_000);
    return await c.next(10_000);
  } finally {
    c.destroy();
  }
}

test.serial('example lsdyna-solvers.yaml: solver-aware routing on one port, through a failover of explicit-1 and back', async (t) => {
  t.timeout(120_000);
  const daemons = FILES.map(runLicd);
  t.teardown(() => Promise.all(daemons.map((d) => d.stop())));
  for (const d of daemons) await waitFor(() => accepts(d.port), { timeout: 15_000, what: `licd on ${d.port}` });

  const doc = YAML.parse(readFileSync(join(REPO, 'conf/examples/lsdyna-solvers.yaml'), 'utf8')) as Record<string, any>;
  delete doc.stats;
  for (const f of doc.frontends) f.listen = `127.0.0.1:${await freePort()}`;
  const config = parseProxyConfig('lsdyna-solvers.yaml', YAML.stringify(doc));
  const app = await ProxyApp.start({ config, log: silentLogger, monitorFactory: createMonitorFactory() });
  t.teardown(() => app.stop(0));
  const pool = app.runtime.pool('solvers')!;
  await waitFor(() => pool.servers.every((s) => s.status === 'UP' && s.lastCheck?.features !== undefined), { timeout: 20_000, what: 'four servers UP' });
  const port = app.runtime.port('lsdyna');

  const expect: Record<string, string> = {
    'LS-DYNA-EXPLICIT': 'explicit-1',
    'LS-DYNA-IMPLICIT': 'implicit',
    'LS-DYNA-EM': 'em-thermal',
    'LS-DYNA-THERMAL': 'em-thermal',
  };
  for (const [feature, server] of Object.entries(expect)) {
    for (let i = 0; i < 3; i++) t.regex(await checkout(port, feature), new RegExp(`^GRANTED handle=${server}\\.`), feature);
  }
  t.is(await checkout(port, 'LS-DYNA-SPH'), 'DENIED feature=LS-DYNA-SPH reason=UNKNOWN_FEATURE available=0');

  // An implicit job holds its seat across the explicit server's failure.
  const held = await LineClient.connect(port);
  t.teardown(() => held.destroy());
  t.regex(await held.request('CHECKOUT LS-DYNA-IMPLICIT'), /^GRANTED handle=implicit\./);

  await daemons[0]!.stop();
  // From the very next checkout on (before any check noticed), EXPLICIT is served by the backup: none fails.
  const afterKill: string[] = [];
  for (let i = 0; i < 20; i++) afterKill.push(await checkout(port, 'LS-DYNA-EXPLICIT'));
  t.deepEqual(afterKill.filter((a) => !a.startsWith('GRANTED handle=explicit-2.')), []);
  await waitFor(() => pool.server('explicit-1')!.status === 'DOWN', { timeout: 15_000, what: 'explicit-1 DOWN' });
  t.is(await held.request('HEARTBEAT'), 'OK', 'the implicit session never noticed');

  daemons[0] = runLicd(FILES[0]!);
  await waitFor(() => pool.server('explicit-1')!.status === 'UP', { timeout: 20_000, what: 'explicit-1 UP again' });
  t.regex(await checkout(port, 'LS-DYNA-EXPLICIT'), /^GRANTED handle=explicit-1\./, 'failback: EXPLICIT goes to explicit-1 again');
  t.regex(await checkout(port, 'LS-DYNA-EM'), /^GRANTED handle=em-thermal\./);
});
