import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../helpers/cli.ts';

const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
const hasAnalyze = analyze.status === 0;
const maybe = hasAnalyze ? test : test.skip;
if (!hasAnalyze) console.log('systemd-analyze is absent (Debian package systemd): unit verification skipped');

/**
 * `systemd-analyze verify` also checks that ExecStart's program exists; the units name the installed path
 * (/usr/local/bin), so the copy under test points at this checkout's executables instead.
 */
function verify(unit: string, bin: string, installed: string, as = unit): string {
  const dir = mkdtempSync(join(tmpdir(), 'licproxy-units-'));
  const text = readFileSync(join(REPO, 'systemd', unit), 'utf8').replaceAll(installed, join(REPO, 'bin', bin));
  writeFileSync(join(dir, unit), text);
  if (as !== unit) copyFileSync(join(dir, unit), join(dir, as));
  const r = spawnSync('systemd-analyze', ['verify', join(dir, as)], { encoding: 'utf8' });
  return `${r.status}\n${r.stderr}`;
}

maybe('licproxy.service passes systemd-analyze verify', (t) => {
  t.is(verify('licproxy.service', 'licproxy.js', '/usr/local/bin/licproxy'), '0\n');
});

maybe('licproxy.socket passes systemd-analyze verify beside licproxy.service', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'licproxy-units-'));
  writeFileSync(join(dir, 'licproxy.service'), readFileSync(join(REPO, 'systemd', 'licproxy.service'), 'utf8').replaceAll('/usr/local/bin/licproxy', join(REPO, 'bin', 'licproxy.js')));
  copyFileSync(join(REPO, 'systemd', 'licproxy.socket'), join(dir, 'licproxy.socket'));
  const r = spawnSync('systemd-analyze', ['verify', join(dir, 'licproxy.socket'), join(dir, 'licproxy.service')], { encoding: 'utf8' });
  t.is(`${r.status}\n${r.stderr}`, '0\n');
});

maybe('licd@.service passes systemd-analyze verify as licd@primary', (t) => {
  t.is(verify('licd@.service', 'licd.js', '/usr/local/bin/licd', 'licd@primary.service'), '0\n');
});

test('the units reload with HUP, restart on failure and are hardened', (t) => {
  for (const unit of ['licproxy.service', 'licd@.service']) {
    const text = readFileSync(join(REPO, 'systemd', unit), 'utf8');
    for (const line of ['ExecReload=/bin/kill -HUP $MAINPID', 'Restart=on-failure', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'User=licproxy']) {
      t.true(text.includes(line), `${unit} lacks ${line}`);
    }
  }
  const proxy = readFileSync(join(REPO, 'systemd', 'licproxy.service'), 'utf8');
  t.regex(proxy, /AmbientCapabilities=CAP_NET_BIND_SERVICE/);
  t.regex(proxy, /LimitNOFILE=\d{6}/);
  t.regex(readFileSync(join(REPO, 'systemd', 'licd@.service'), 'utf8'), /\/etc\/licproxy\/licd\/%i\.yaml/);
});

// A primary's death must not take its workers (and their license connections) with it: systemd signals the main
// process only (KillMode=process; mixed would SIGKILL the workers once the primary is gone).
test('licproxy.service leaves the workers of a dead primary alone; licproxy.socket names the frontends of conf/licproxy.yaml', (t) => {
  const proxy = readFileSync(join(REPO, 'systemd', 'licproxy.service'), 'utf8');
  t.regex(proxy, /^KillMode=process$/m);
  t.regex(proxy, /^Restart=on-failure$/m);
  const socket = readFileSync(join(REPO, 'systemd', 'licproxy.socket'), 'utf8');
  const listens = [...socket.matchAll(/^ListenStream=(\S+)$/gm)].map((m) => m[1]);
  const conf = readFileSync(join(REPO, 'conf', 'licproxy.yaml'), 'utf8');
  // Frontends' listen lines are indented under their list item (stats.listen is not).
  const frontends = [...conf.matchAll(/^ {4}listen: (\S+)$/gm)].map((m) => m[1]);
  t.true(frontends.length > 0);
  t.deepEqual(listens.sort(), frontends.sort());
  t.regex(socket, /^Service=licproxy\.service$/m);
});

// The units point at these files; they must exist in conf/ as the README's install steps copy them.
test('conf/ holds the files the units point to', (t) => {
  execFileSync('test', ['-f', join(REPO, 'conf', 'licproxy.yaml')]);
  execFileSync('test', ['-f', join(REPO, 'conf', 'licd', 'primary.yaml')]);
  t.pass();
});
