/**
 * `type: external`: runs a command (argv, no shell) with `{host}`, `{port}` (the check port) and `{port:NAME}`
 * substituted. Exit 0 passes; when its stdout is lmstat -a output it is judged like an `lmstat` check. At the
 * timeout the whole process group is killed (SIGKILL), so a wrapper script cannot leave its children behind.
 * `ports:` means what it means for every check type: each listed port must accept too (probed beside the command).
 */
import { spawn } from 'node:child_process';
import type { CheckConfig } from '../config/proxy-config.ts';
import { isLmstatOutput } from '../client/lmstat-parser.ts';
import { CheckFailure, PASS, portOf, runBounded, shortReason, type Check, type CheckTarget, type Verdict } from './check.ts';
import { lmstatVerdict } from './lmstat-verdict.ts';
import { probePorts } from './socket-probe.ts';
import type { CheckResult } from './types.ts';

/** lmstat -a of a big site is a few hundred KB; more than this is kept out of memory. */
const MAX_STDOUT = 1024 * 1024;
const MAX_STDERR = 64 * 1024;
const PLACEHOLDER = /\{host\}|\{port(?::([^}]+))?\}/g;

export class ExternalCheck implements Check {
  readonly #timeout: number;
  readonly #port: string;
  readonly #command: readonly string[];
  readonly #require: readonly string[];
  /** `ports:`: probed while the command runs; the command may speak to none of them. */
  readonly #probe: readonly string[];

  constructor(config: CheckConfig) {
    this.#timeout = config.timeout;
    this.#port = config.port;
    this.#command = config.command ?? [];
    this.#require = config.requireFeatures;
    this.#probe = [...new Set(config.ports)];
  }

  run(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
    return runBounded(this.#timeout, signal, async (bounded) => {
      if (this.#command.length === 0) throw new CheckFailure('no command');
      const argv = this.#command.map((arg) => substitute(arg, target, this.#port));
      const probes = this.#probe.length ? probePorts(target.host, target.ports, this.#probe, bounded, true) : undefined;
      // The command's verdict first: its own failure says more than a port that does not accept.
      const [out] = await Promise.all([runCommand(argv, bounded), probes?.catch(() => undefined)]);
      const verdict = judge(out, target.host, this.#require);
      if (verdict.ok && probes) await probes;
      return verdict;
    });
  }
}

function substitute(arg: string, target: CheckTarget, checkPort: string): string {
  return arg.replace(PLACEHOLDER, (whole, name: string | undefined) => {
    if (whole === '{host}') return target.host;
    return String(portOf(target, name ?? checkPort));
  });
}

interface CommandOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function judge(out: CommandOutcome, host: string, require: readonly string[]): Verdict {
  if (out.code === 0) return isLmstatOutput(out.stdout) ? lmstatVerdict(out.stdout, host, require) : PASS;
  const line = firstLine(out.stderr) ?? firstLine(out.stdout);
  const head = out.code !== null ? `exit ${out.code}` : `killed by ${out.signal ?? 'signal'}`;
  return { ok: false, reason: shortReason(line ? `${head}: ${line}` : head) };
}

function firstLine(text: string): string | undefined {
  for (const line of text.split('\n')) if (line.trim()) return line.trim();
  return undefined;
}

/** Runs argv to completion (exit and both pipes closed), or kills its process group when `signal` aborts. */
function runCommand(argv: string[], signal: AbortSignal): Promise<CommandOutcome> {
  return new Promise<CommandOutcome>((resolve, reject) => {
    // detached: the child leads its own process group, which is what gets killed.
    const child = spawn(argv[0]!, argv.slice(1), {
      shell: false,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
    });
    const stdout = new Capture(MAX_STDOUT);
    const stderr = new Capture(MAX_STDERR);
    child.stdout.on('data', stdout.add);
    child.stderr.on('data', stderr.add);
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let settled = false;

    const killGroup = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // ESRCH: the group is gone already. Fall back to the child itself in case it left its group.
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
    };
    const onAbort = (): void => {
      killGroup();
      settle(signal.reason);
    };
    const settle = (err: unknown, value?: CommandOutcome): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      if (err !== undefined) reject(err);
      else resolve(value!);
    };
    signal.addEventListener('abort', onAbort, { once: true });

    child.once('error', (err: NodeJS.ErrnoException) => {
      settle(new CheckFailure(shortReason(`cannot run ${argv[0]}: ${err.code ?? err.message}`)));
    });
    child.once('exit', (code, sig) => {
      exit = { code, signal: sig };
      // Anything the command left running in its group would hold the pipes open until the timeout.
      killGroup();
    });
    child.once('close', () => {
      if (!exit) return;
      settle(undefined, { ...exit, stdout: stdout.text(), stderr: stderr.text() });
    });
  });
}

/** Keeps at most `max` bytes of a stream; the rest is read (so the child never blocks) and dropped. */
class Capture {
  readonly #max: number;
  readonly #chunks: Buffer[] = [];
  #size = 0;

  constructor(max: number) {
    this.#max = max;
  }

  readonly add = (chunk: Buffer): void => {
    if (this.#size >= this.#max) return;
    const room = this.#max - this.#size;
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.#chunks.push(kept);
    this.#size += kept.length;
  };

  text(): string {
    return Buffer.concat(this.#chunks, this.#size).toString('utf8');
  }
}
