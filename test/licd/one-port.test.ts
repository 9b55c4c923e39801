/**
 * An LM-X / RLM shaped server has one port: `server.ports.tokens` may be left out, and then no token port opens.
 * Port 0 is documented as "a free port the system picks" (tests, demos): licd says so with the bound port.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLicdConfig } from '../../src/config/licd-config.ts';
import { LicenseServer } from '../../src/licd/license-server.ts';
import { LICD } from '../helpers/cli.ts';
import { LineClient } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';

const ONE_PORT = 'server: { name: lmx, ports: { license: 0 } }\nfeatures: [ { name: CFX, count: 2 } ]\n';

test('a server without a token port: parsed as null, serves its license port, opens nothing else', async (t) => {
  const config = parseLicdConfig(ONE_PORT, 'lmx.yaml');
  t.is(config.server.ports.tokens, null);
  const server = new LicenseServer(config);
  const ports = await server.start();
  t.teardown(() => server.stop());
  t.is(ports.tokens, 0, 'no token port bound');
  const c = await LineClient.connect(ports.license);
  t.teardown(() => c.destroy());
  t.regex(await c.request('HELLO user=u host=h'), /^OK server=lmx/);
  t.regex(await c.request('CHECKOUT CFX'), /^GRANTED handle=lmx\./);
  const st = JSON.parse(await c.request('STATUS json')) as { ports: { license: number; tokens: number } };
  t.deepEqual(st.ports, { license: ports.license, tokens: 0 });
});

test('licd logs the port it picked for a port written as 0, as a warning', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'licd-port0-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'licd.yaml');
  writeFileSync(file, 'server: { name: zero, ports: { license: 0, tokens: 0 } }\nfeatures: [ { name: F, count: 1 } ]\n');
  const child = spawn(process.execPath, [LICD, '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((r) => child.once('exit', r));
  t.teardown(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  type Line = { level: number; msg: string; port?: number; key?: string };
  const warned = await waitFor(
    () => {
      const lines = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line);
      const w = lines.filter((l) => l.level === 40 && l.key !== undefined);
      return w.length >= 2 ? w : undefined;
    },
    { timeout: 15_000, what: 'the port-0 warnings' },
  );
  t.deepEqual(warned.map((w) => w.key).sort(), ['server.ports.license', 'server.ports.tokens']);
  for (const w of warned) {
    t.true(typeof w.port === 'number' && w.port > 0);
    t.regex(w.msg, new RegExp(`${w.key}: 0 .*free port ${w.port}`));
  }
});
