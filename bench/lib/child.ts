/**
 * Child processes of the bench (proxies, backends, load helpers): output goes to a log file in the run's temp
 * dir (an unread pipe would stall the child), each is registered for cleanup, and stop() escalates to SIGKILL.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { appendFileSync, closeSync, openSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { cleanup } from './cleanup.ts';

export interface ChildHandle {
  readonly name: string;
  readonly pid: number;
  readonly process: ChildProcess;
  /** Set once the process has exited (code or signal). */
  readonly exited: { code: number | null; signal: NodeJS.Signals | null } | null;
  /** The last lines of its log, for error messages. */
  logTail(lines?: number): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Adds an IPC channel (node children that talk to the bench). */
  ipc?: boolean;
}

export function startChild(opts: StartOptions): ChildHandle {
  if (cleanup.closing) throw new Error(`not starting ${opts.name}: the bench is stopping`);
  const fd = openSync(opts.logFile, 'a');
  const stdio: StdioOptions = ['ignore', fd, fd];
  if (opts.ipc) stdio.push('ipc');
  const child = spawn(opts.command, opts.args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio });
  closeSync(fd);
  let exited: ChildHandle['exited'] = null;
  const gone = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    });
    child.once('error', (err) => {
      exited ??= { code: -1, signal: null };
      try {
        // The spawn failure (ENOENT...) is the most useful line of the log.
        appendFileSync(opts.logFile, `spawn failed: ${err.message}\n`);
      } catch {
        /* log unwritable: the exit status still says it failed */
      }
      resolve();
    });
  });
  const stop = async (graceMs = 3_000): Promise<void> => {
    if (exited || child.pid === undefined) return;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), graceMs)));
    if ((await Promise.race([gone, timeout])) === 'timeout' && !exited) {
      child.kill('SIGKILL');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 2_000))]);
    }
    clearTimeout(timer);
  };
  const unregister = cleanup.add(`${opts.name} (pid ${child.pid})`, () => stop());
  void gone.then(unregister);
  return {
    name: opts.name,
    get pid() {
      return child.pid ?? -1;
    },
    process: child,
    get exited() {
      return exited;
    },
    logTail(lines = 15) {
      try {
        return readFileSync(opts.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      } catch {
        return '';
      }
    },
    stop,
  };
}

/**
 * Polls until `host:port` accepts a TCP connection; fails at once if `child` exits first (with its log tail), so
 * a config error shows up as the proxy's own message, not as a timeout.
 */
export async function waitForPort(host: string, port: number, child: ChildHandle | null, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child?.exited) {
      throw new Error(`${child.name} exited (${child.exited.code ?? child.exited.signal}) before listening on ${port}:\n${child.logTail()}`);
    }
    if (await canConnect(host, port)) return;
    if (Date.now() > deadline) {
      throw new Error(`${child?.name ?? 'server'} did not listen on ${host}:${port} within ${timeoutMs}ms${child ? `:\n${child.logTail()}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const timer = setTimeout(() => done(false), 1_000);
    function done(ok: boolean): void {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    }
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
