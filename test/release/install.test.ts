import { freePort } from '../helpers/ports.ts';
import test from 'ava';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { REPO } from '../helpers/cli.ts';
import { licdYaml } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';
import { requireFreshDist, VERSION } from './dist.ts';

const run = promisify(execFile);

/**
 * README "Installing", in a temporary prefix: `npm pack` of this checkout, `npm install -g --prefix <dir>` of the
 * tarball, then the installed executables (by their bin links, on the Node running this test): `licproxy check`
 * of a shipped configuration, an installed licd, an installed licproxy with two workers in front of it, and
 * `licproxy checkout` through it.
 */
test('npm pack, npm install -g of the tarball, then check and a checkout through the installed executables', async (t) => {
  t.timeout(180_000);
  if (!requireFreshDist(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'licproxy-install-'));
  const children: ChildProcess[] = [];
  t.teardown(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  // The Node under test first on PATH: npm, and the installed executables' `#!/usr/bin/env node`, run on it.
  const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, npm_config_update_notifier: 'false' };

  // --ignore-scripts: dist/ is already built (checked above); a build here would rewrite it under other tests.
  await run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], { cwd: REPO, env, timeout: 60_000 });
  const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  t.is(tgz, `licproxy-${VERSION}.tgz`);
  const prefix = join(dir, 'prefix');
  await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(dir, tgz!)], {
    cwd: dir,
    env,
    timeout: 120_000,
  });
  const pkg = join(prefix, 'lib', 'node_modules', 'licproxy');
  // What runs ships; what builds and tests does not.
  for (const f of ['bin/licproxy.js', 'dist/cli/licproxy.js', 'dist/proxy/cluster/worker-main.js', 'conf/licproxy.yaml', 'systemd/licproxy.service', 'README.md']) {
    t.true(existsSync(join(pkg, f)), `${f} is installed`);
  }
  for (const f of ['test', 'bench', 'tsconfig.json', 'node_modules/tsx', 'node_modules/typescript']) t.false(existsSync(join(pkg, f)), `${f} is not installed`);
  // The native relay is compiled by the package's install script where a C compiler and Node's headers are.
  for (const f of ['native/relay.c', 'scripts/build-native.js']) t.true(existsSync(join(pkg, f)), `${f} is installed`);
  if (canBuildNative()) t.true(existsSync(join(pkg, 'native/build/relay.node')), 'the native relay was built at install');
  const licproxy = join(prefix, 'bin', 'licproxy');
  const licd = join(prefix, 'bin', 'licd');

  const version = await run(licproxy, ['--version'], { env });
  t.is(version.stdout.trim(), VERSION);
  const check = await run(licproxy, ['check', '-c', join(pkg, 'conf', 'licproxy.yaml')], { env });
  t.is(check.stdout.trim(), 'configuration is valid');

  const start = (bin: string, args: string[]): { child: ChildProcess; lines: () => Record<string, unknown>[]; err: () => string } => {
    const child = spawn(bin, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const lines = (): Record<string, unknown>[] =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    return { child, lines, err: () => err };
  };
  const alive = (p: { child: ChildProcess; err: () => string }, name: string): void => {
    if (p.child.exitCode !== null) throw new Error(`${name} exited ${p.child.exitCode}: ${p.err()}`);
  };

  writeFileSync(join(dir, 'licd.yaml'), licdYaml({ name: 'inst', features: [{ name: 'CAD', count: 2 }] }));
  const daemon = start(licd, ['-c', join(dir, 'licd.yaml')]);
  const ports = await waitFor(
    () => (alive(daemon, 'licd'), daemon.lines().find((l) => l.event === 'listening')?.ports as { license: number } | undefined),
    { timeout: 30_000, what: 'the installed licd listening' },
  );

  writeFileSync(
    join(dir, 'licproxy.yaml'),
    [
      'global: { workers: 2 }',
      'pools:',
      '  lic:',
      `    ports: { license: ${ports.license} }`,
      '    check: { type: lmstat, port: license, interval: 1s }',
      '    servers:',
      '      - { name: inst, host: 127.0.0.1 }',
      'frontends:',
      `  - { name: lic, listen: 127.0.0.1:${await freePort()}, pool: lic, port: license }`,
      '',
    ].join('\n'),
  );
  const proxy = start(licproxy, ['run', '-c', join(dir, 'licproxy.yaml')]);
  const listen = await waitFor(
    () => (alive(proxy, 'licproxy'), proxy.lines().find((l) => l.msg === 'listening' && l.frontend === 'lic')?.listen as string | undefined),
    { timeout: 60_000, what: 'the installed licproxy listening' },
  );
  await waitFor(() => (alive(proxy, 'licproxy'), proxy.lines().some((l) => l.msg === 'licproxy running')), { timeout: 60_000, what: 'licproxy running' });
  await waitFor(() => (alive(proxy, 'licproxy'), proxy.lines().some((l) => l.msg === 'server is UP')), { timeout: 30_000, what: 'server inst UP' });

  const co = await run(licproxy, ['checkout', 'CAD', '-s', listen], { env, timeout: 30_000 });
  t.regex(co.stdout, /granted CAD x1 handle=inst\.\S+ on inst/);
  t.regex(co.stdout, /checked in/);
  // It went through the balancer's workers (the compiled worker entry).
  t.true(proxy.lines().some((l) => typeof l.worker === 'number' && l.frontend === 'lic'), 'a connection line from a worker');
  proxy.child.kill('SIGTERM');
  daemon.child.kill('SIGTERM');
  await Promise.all([proxy.child, daemon.child].map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))));
  t.is(proxy.child.exitCode, 0, proxy.err());
});

/** A C compiler on PATH and Node's headers where scripts/build-native.js looks first. */
function canBuildNative(): boolean {
  const cc = spawnSync('cc', ['--version'], { stdio: 'ignore' });
  const headers = [join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node'];
  return cc.status === 0 && headers.some((d) => existsSync(join(d, 'node_api.h')) && existsSync(join(d, 'uv.h')));
}
