/** `licproxy run -c <file>` as a child process, its JSON log lines parsed, killed at teardown. */
import { spawn, type ChildProcess } from 'node:child_process';
import type { ExecutionContext } from 'ava';
import { LICPROXY, REPO } from './cli.ts';

export interface LicproxyProcess {
  child: ChildProcess;
  /** Every JSON line written to stdout so far. */
  lines: () => Record<string, unknown>[];
  stderr: () => string;
  /** Exit code, or signal name. */
  exited: Promise<number | string>;
}

export interface SpawnOptions {
  /**
   * Listening socket descriptors of this process to pass as systemd's socket activation does: as descriptors 3, 4,
   * ... of licproxy, with LISTEN_FDS and LISTEN_PID (its own pid: a shell sets it, then execs node).
   */
  passFds?: number[];
}

/** `cleanup` runs at teardown once the process is gone (SIGKILLed if still running); `env` is added to ours. */
export function spawnLicproxy(
  t: ExecutionContext,
  file: string,
  cleanup: () => void = () => {},
  env: NodeJS.ProcessEnv = {},
  opts: SpawnOptions = {},
): LicproxyProcess {
  const fds = opts.passFds ?? [];
  const child =
    fds.length === 0
      ? spawn(process.execPath, [LICPROXY, 'run', '-c', file], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
      : spawn('/bin/sh', ['-c', `LISTEN_PID=$$ LISTEN_FDS=${fds.length} exec "$0" "$@"`, process.execPath, LICPROXY, 'run', '-c', file], {
          cwd: REPO,
          stdio: ['ignore', 'pipe', 'pipe', ...fds],
          env: { ...process.env, ...env },
        });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    cleanup();
  });
  const lines = (): Record<string, unknown>[] =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { child, lines, stderr: () => err, exited };
}
