/**
 * Runs the `daemons:` of a balancer configuration: each licd as a child process of the balancer, so an operator
 * trying the demo can kill one member (`kill <pid>`) and watch the failover, while Ctrl-C still stops them all.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { entryArgs } from '../../common/entry-points.ts';
import { LpxError, errorMessage } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import { loadLicdConfig, type LicdConfig } from '../../config/licd-config.ts';
import type { ProxyConfig } from '../../config/proxy-config.ts';
import type { AppService, PreparedReload } from '../../proxy/app.ts';

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;

export interface DaemonInfo {
  name: string;
  file: string;
  pid: number;
  host: string;
  license: number;
  /** Null: a one-port server. */
  tokens: number | null;
}

interface Daemon {
  config: LicdConfig;
  child: ChildProcess;
  exited: Promise<void>;
  stopping: boolean;
}

export class LicdDaemons implements AppService {
  readonly name = 'licd-daemons';
  readonly stage = 'before-proxy' as const;
  readonly #files: readonly string[];
  readonly #log: Logger;
  readonly #childLogLevel: string;
  readonly #daemons: Daemon[] = [];

  constructor(files: readonly string[], opts: { log: Logger; childLogLevel?: string }) {
    this.#files = files;
    this.#log = opts.log.child({ component: 'daemons' });
    this.#childLogLevel = opts.childLogLevel ?? 'info';
  }

  async start(): Promise<void> {
    // Every file is validated before any process starts, so a bad one leaves nothing running.
    const configs = this.#files.map((f) => loadLicdConfig(f));
    try {
      for (const config of configs) this.#daemons.push(await this.#spawn(config));
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async #spawn(config: LicdConfig): Promise<Daemon> {
    const child = spawn(process.execPath, [...entryArgs('cli/licd'), '-c', config.file, '--log-level', this.#childLogLevel], {
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      process.stderr.write(d);
    });
    const d: Daemon = { config, child, stopping: false, exited: new Promise((r) => child.once('exit', () => r())) };
    child.once('exit', (code, signal) => {
      if (!d.stopping) {
        this.#log.warn({ daemon: config.server.name, pid: child.pid, code, signal }, `licd ${config.server.name} (pid ${child.pid}) exited${signal ? ` on ${signal}` : ` with code ${code}`}`);
      }
    });
    // licd says when its listeners are open; probing the ports instead could find another process holding them.
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), START_TIMEOUT_MS);
      child.on('message', (m: { type?: string }) => {
        if (m?.type === 'licd-ready') {
          clearTimeout(timer);
          resolve(true);
        }
      });
      child.once('exit', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    const { ports } = config.server;
    if (!ready) {
      child.kill('SIGKILL');
      const why = stderr.trim().split('\n').pop() || 'did not start';
      const hint = /address in use/.test(why)
        ? `; change server.ports in ${config.file} or stop what holds the port`
        : '';
      throw new LpxError('LPX_ERR_LISTEN', `licd ${config.server.name} (${config.file}) failed: ${why}${hint}`);
    }
    child.channel?.unref();
    this.#log.info({ daemon: config.server.name, pid: child.pid, license: ports.license, tokens: ports.tokens }, `licd ${config.server.name} running (pid ${child.pid})`);
    return d;
  }

  /** The licd children are started once: a changed `daemons:` list is said, and applies at the next start. */
  async prepareReload(config: ProxyConfig): Promise<PreparedReload | null> {
    if (JSON.stringify(config.daemons) === JSON.stringify(this.#files)) return null;
    const files = config.daemons;
    return {
      commit: () => this.#log.warn({ running: this.#files, file: files }, 'daemons: changed in the file; applies at the next start'),
      abort: () => {},
    };
  }

  get daemons(): DaemonInfo[] {
    return this.#daemons.map(({ config, child }) => ({
      name: config.server.name,
      file: config.file,
      pid: child.pid ?? 0,
      host: config.server.host,
      license: config.server.ports.license,
      tokens: config.server.ports.tokens,
    }));
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.#daemons.map(async (d) => {
        d.stopping = true;
        if (d.child.exitCode !== null || d.child.signalCode !== null) return;
        d.child.kill('SIGTERM');
        const timer = setTimeout(() => d.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await d.exited;
        clearTimeout(timer);
      }),
    ).catch((err: unknown) => this.#log.error({ error: errorMessage(err) }, 'stopping daemons failed'));
  }
}
