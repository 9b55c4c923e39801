/**
 * Finds haproxy / nginx; when missing and the bench runs as root, installs the Debian package (saying so), else
 * the target is skipped with a message rather than failing the whole run.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const EXTRA_DIRS = ['/usr/sbin', '/usr/local/sbin', '/sbin'];

export function findBinary(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const d of dirs) {
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next dir */
    }
  }
  return null;
}

const attempted = new Set<string>();

/**
 * The binary's path, or a one-line reason why it is unavailable. `files` are extra files the target needs (the
 * NGINX stream module); a missing one also triggers the install.
 */
export function ensureTool(
  binary: string,
  packages: readonly string[],
  log: (line: string) => void,
  needsFile?: () => boolean,
): { path: string } | { skip: string } {
  let path = findBinary(binary);
  if (path && (!needsFile || needsFile())) return { path };
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) return { skip: `${binary} not installed (run as root to let the bench apt-get install ${packages.join(' ')})` };
  if (!existsSync('/usr/bin/apt-get')) return { skip: `${binary} not installed and apt-get is not available` };
  const key = packages.join(' ');
  if (!attempted.has(key)) {
    attempted.add(key);
    log(`${binary} missing: running apt-get install -y ${key} (as root)...`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    let r = spawnSync('apt-get', ['install', '-y', ...packages], { stdio: 'ignore', env, timeout: 300_000 });
    if (r.status !== 0) {
      spawnSync('apt-get', ['update'], { stdio: 'ignore', env, timeout: 300_000 });
      r = spawnSync('apt-get', ['install', '-y', ...packages], { stdio: 'ignore', env, timeout: 300_000 });
    }
    if (r.status !== 0) log(`apt-get install ${key} failed (exit ${r.status ?? r.signal})`);
  }
  path = findBinary(binary);
  if (path && (!needsFile || needsFile())) return { path };
  return { skip: `${binary} unavailable (apt-get install ${key} did not provide it)` };
}

/** First line of `<binary> <args>` output (stdout or stderr), for the report header. */
export function toolVersion(path: string, args: string[]): string {
  const r = spawnSync(path, args, { encoding: 'utf8', timeout: 10_000 });
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  return text.split('\n')[0] ?? 'unknown';
}
