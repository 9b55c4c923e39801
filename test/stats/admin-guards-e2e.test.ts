/**
 * The campaign's checks on the stats listener of a real `licproxy run` (default limits): every admin endpoint
 * answers 401 without the right bearer token and 413 to a body over 64 KB, and 100 slowloris connections do not
 * stop /health from answering while they hang.
 */
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { spawnLicproxy } from '../helpers/licproxy-run.ts';
import { freePorts } from '../helpers/ports.ts';
import { adminPost, request } from '../helpers/stats.ts';
import { startEcho } from '../helpers/backend.ts';
import { waitFor } from '../helpers/wait.ts';

const TOKEN = 'e2e-guard-token-0123456789abcdef';
const SLOW = 100;

test('licproxy run: 401 without the right token and 413 over 64 KB on every admin endpoint; slowloris does not stop /health', async (t) => {
  t.timeout(120_000);
  const echo = await startEcho(t);
  const [fePort, statsPort] = (await freePorts(2)) as [number, number];
  const dir = mkdtempSync(join(tmpdir(), 'admin-guards-'));
  writeFileSync(join(dir, 'admin.token'), `${TOKEN}\n`, { mode: 0o600 });
  const file = join(dir, 'licproxy.yaml');
  writeFileSync(
    file,
    `stats:\n  listen: 127.0.0.1:${statsPort}\n  admin: { token_file: admin.token }\npools:\n  p:\n    check: { type: none }\n    servers: [{ name: a, address: "127.0.0.1:${echo.port}" }]\nfrontends: [{ name: f, listen: "127.0.0.1:${fePort}", pool: p }]\n`,
  );
  const p = spawnLicproxy(t, file, () => rmSync(dir, { recursive: true, force: true }));
  const base = { host: '127.0.0.1', port: statsPort };
  await waitFor(async () => (await request(base, '/health')).status === 200, { timeout: 20_000, what: '/health' });

  const endpoints: Array<[string, unknown]> = [
    ['/api/pools/p/servers/a', { state: 'drain' }],
    ['/api/pools/p/servers/a', { weight: 5 }],
    ['/api/pools/p/servers/a', { bindings: 'clear' }],
    ['/api/reload', {}],
  ];
  const wrong = [undefined, '', 'wrong', TOKEN.toUpperCase(), `${TOKEN}x`, TOKEN.slice(1), `${TOKEN} ${TOKEN}`];
  for (const [path, body] of endpoints) {
    for (const token of wrong) t.is((await adminPost(base, path, body, token)).status, 401, `${path} ${String(token)}`);
    const raw = await request(base, path, { method: 'POST', headers: { Authorization: `Basic ${TOKEN}` }, body: JSON.stringify(body) });
    t.is(raw.status, 401, `${path} Basic`);
    const big = JSON.stringify({ state: 'drain', pad: 'x'.repeat(65 * 1024) });
    t.is((await adminPost(base, path, big, TOKEN)).status, 413, `${path} 65 KB`);
  }
  // Nothing was applied by the refused calls; the right token works.
  t.false(p.lines().some((l) => l.msg === 'admin: reload applied' || (typeof l.msg === 'string' && l.msg.startsWith('admin: reload refused'))));
  t.is((await adminPost(base, '/api/pools/p/servers/a', { weight: 5 }, TOKEN)).status, 200);

  // Slowloris: headers that never complete, a byte every 500 ms (bounded to 10 drips).
  const slow: net.Socket[] = [];
  let open = 0;
  t.teardown(() => slow.forEach((s) => s.destroy()));
  for (let i = 0; i < SLOW; i++) {
    const s = net.connect(statsPort, '127.0.0.1');
    s.on('error', () => {});
    s.on('connect', () => {
      open++;
      s.write('GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    });
    s.on('close', () => open--);
    slow.push(s);
  }
  await waitFor(() => open === SLOW, { what: 'slowloris connections open' });
  let drips = 0;
  const drip = setInterval(() => {
    if (++drips > 10) return clearInterval(drip);
    for (const s of slow) if (!s.destroyed) s.write('a');
  }, 500);
  t.teardown(() => clearInterval(drip));
  let answeredWhileHanging = 0;
  for (let i = 0; i < 10 && open > SLOW / 2; i++) {
    const r = await request(base, '/health');
    if (r.status === 200 && open > SLOW / 2) answeredWhileHanging++;
  }
  t.true(answeredWhileHanging > 0, `/health answered ${answeredWhileHanging} times with ${open} slowloris connections open`);
  t.is(p.child.exitCode, null);
});
