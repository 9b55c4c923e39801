import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { LICPROXY } from '../helpers/cli.ts';
import { spawnLicproxy } from '../helpers/licproxy-run.ts';
import { connectClient, readAll, readBytes } from '../helpers/proxy.ts';
import { startNamed } from '../helpers/backend.ts';
import { freePorts } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

interface Running {
  child: ChildProcess;
  file: string;
  lines: () => Record<string, unknown>[];
  exited: Promise<number | string>;
  port: (frontend: string) => Promise<number>;
}

/** `ports`: the listen ports of fe and fe2 (a frontend may not listen on port 0). */
function yaml(backendPort: number, ports: number[], opts: { grace?: string; extra?: boolean } = {}): string {
  return `
global:
  grace: ${opts.grace ?? '10s'}
pools:
  p:
    check: { type: none }
    servers:
      - { name: a, address: 127.0.0.1:${backendPort} }
frontends:
  - name: fe
    listen: 127.0.0.1:${ports[0]}
    pool: p
${opts.extra ? `  - { name: fe2, listen: 127.0.0.1:${ports[1]}, pool: p }\n` : ''}`;
}

async function runProxy(t: ExecutionContext, text: string): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), 'licproxy-run-'));
  const file = join(dir, 'licproxy.yaml');
  writeFileSync(file, text);
  const { child, lines, stderr, exited } = spawnLicproxy(t, file, () => rmSync(dir, { recursive: true, force: true }));
  const port = (frontend: string): Promise<number> =>
    waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`licproxy exited ${child.exitCode}: ${stderr()}`);
        const l = lines().filter((x) => x.msg === 'listening' && x.frontend === frontend).pop();
        return l ? Number(String(l.listen).split(':').pop()) : 0;
      },
      { timeout: 20_000, what: `frontend ${frontend} listening` },
    );
  return { child, file, lines, exited, port };
}

test('licproxy run: SIGHUP with an invalid file keeps the running config and logs every error; a valid one is applied', async (t) => {
  const b = await startNamed(t, 'a');
  const ports = await freePorts(2);
  const p = await runProxy(t, yaml(b.port, ports));
  const port = await p.port('fe');
  const held = await connectClient(t, port);
  t.is((await readBytes(held, 2)).toString(), 'a\n');

  writeFileSync(p.file, 'global:\n  grace: 10\n  bogus: 1\npools: {}\n');
  p.child.kill('SIGHUP');
  await waitFor(() => p.lines().some((l) => l.msg === 'reload failed: keeping the running configuration'), { timeout: 20_000 });
  const errs = await waitFor(() => {
    const e = p.lines().filter((l) => l.level === 50 && typeof l.msg === 'string' && /licproxy\.yaml:\d+:\d+/.test(l.msg));
    return e.length >= 2 ? e : null;
  });
  t.true(errs.some((l) => /grace/.test(String(l.msg))));
  t.true(errs.some((l) => /bogus/.test(String(l.msg))));
  held.write('x');
  t.is((await readBytes(held, 1)).toString(), 'x');
  const again = await connectClient(t, port);
  t.is((await readBytes(again, 2)).toString(), 'a\n');

  writeFileSync(p.file, yaml(b.port, ports, { extra: true }));
  p.child.kill('SIGHUP');
  const port2 = await p.port('fe2');
  const c2 = await connectClient(t, port2);
  t.is((await readBytes(c2, 2)).toString(), 'a\n');
  t.is(await p.port('fe'), port, 'the unchanged frontend kept its listener');
  held.write('y');
  t.is((await readBytes(held, 1)).toString(), 'y');
});

test('licproxy run: SIGTERM waits for a held connection to end, then exits 0', async (t) => {
  const b = await startNamed(t, 'a');
  const p = await runProxy(t, yaml(b.port, await freePorts(1), { grace: '20s' }));
  const port = await p.port('fe');
  const held = await connectClient(t, port);
  await readBytes(held, 2);
  p.child.kill('SIGTERM');
  await waitFor(() => p.lines().some((l) => l.msg === 'stopping: waiting for connections to end'), { timeout: 20_000 });
  t.is(p.child.exitCode, null);
  held.write('z');
  t.is((await readBytes(held, 1)).toString(), 'z');
  held.end();
  t.is(await p.exited, 0);
});

test('licproxy run: SIGTERM with a connection that stays open exits 0 after the grace period', async (t) => {
  const b = await startNamed(t, 'a');
  const p = await runProxy(t, yaml(b.port, await freePorts(1), { grace: '500ms' }));
  const port = await p.port('fe');
  const held = await connectClient(t, port);
  await readBytes(held, 2);
  const gone = readAll(held);
  const at = Date.now();
  p.child.kill('SIGTERM');
  t.is(await p.exited, 0);
  await gone;
  t.true(Date.now() - at >= 450);
  t.true(p.lines().some((l) => l.msg === 'connection closed' && l.end === 'shutdown'));
});

test('licproxy run: a bad file exits 1 with its errors on stderr, no stack', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'licproxy-run-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, 'pools:\n  p:\n    servers: []\nfrontends: 3\n');
  const { runBin } = await import('../helpers/cli.ts');
  const r = await runBin(LICPROXY, ['run', '-c', file]);
  t.is(r.code, 1);
  t.regex(r.stderr, /bad\.yaml:\d+:\d+/);
  t.notRegex(r.stderr, /\n\s+at /);
});
