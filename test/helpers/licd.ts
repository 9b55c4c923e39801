/**
 * Test helpers around licd, for every suite that needs a real license server:
 *
 *   const licd = await startLicd({ features: [{ name: 'LS-DYNA', count: 2 }] });   // in-process, ephemeral ports
 *   t.teardown(licd.stop);
 *   const c = await LineClient.connect(licd.ports.license);
 *   t.is(await c.request('CHECKOUT LS-DYNA'), ...);
 *
 *   const child = await spawnLicd({ features: [...] });   // the real CLI in a child process (signals, SIGSTOP, kill)
 *   t.teardown(child.stop);
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { LineDecoder } from '../../src/common/line-decoder.ts';
import type { Logger } from '../../src/common/logger.ts';
import { parseLicdConfig } from '../../src/config/licd-config.ts';
import { LicenseServer, type BoundPorts } from '../../src/licd/license-server.ts';
import { waitFor } from './wait.ts';

export interface FeatureSpec {
  name: string;
  count: number;
  version?: string;
  /** YYYY-MM-DD */
  expires?: string;
  kind?: 'seats' | 'tokens';
}

export interface LicdSpec {
  /** Default `t1`. */
  name?: string;
  /** Default: LS-DYNA 10 seats, MPPDYNA 64 tokens. */
  features?: FeatureSpec[];
  /** Duration text, default `10m`. */
  heartbeatTimeout?: string;
  allow?: string[];
  proxyProtocol?: boolean;
  /** Fixed ports; default 0 (ephemeral). */
  ports?: { license: number; tokens: number };
}

export const DEFAULT_FEATURES: FeatureSpec[] = [
  { name: 'LS-DYNA', version: '2025.1', count: 10 },
  { name: 'MPPDYNA', count: 64, kind: 'tokens' },
];

/** The licd YAML for a spec (ports 0 unless given). */
export function licdYaml(spec: LicdSpec = {}): string {
  const server: Record<string, unknown> = {
    name: spec.name ?? 't1',
    host: '127.0.0.1',
    ports: spec.ports ?? { license: 0, tokens: 0 },
    heartbeat_timeout: spec.heartbeatTimeout ?? '10m',
  };
  if (spec.allow) server.allow = spec.allow;
  if (spec.proxyProtocol) server.proxy_protocol = true;
  return stringify({ server, features: spec.features ?? DEFAULT_FEATURES });
}

export interface InProcessLicd {
  server: LicenseServer;
  ports: BoundPorts;
  host: string;
  stop: () => Promise<void>;
}

/** Starts licd in this process on ephemeral loopback ports. */
export async function startLicd(spec: LicdSpec = {}, logger?: Logger): Promise<InProcessLicd> {
  const server = new LicenseServer(parseLicdConfig(licdYaml(spec), `${spec.name ?? 't1'}.yaml`), logger ? { logger } : {});
  const ports = await server.start();
  return { server, ports, host: '127.0.0.1', stop: () => server.stop() };
}

/** licd from the TypeScript sources (see helpers/bin/). */
export const LICD_BIN = fileURLToPath(new URL('./bin/licd.js', import.meta.url));

export interface SpawnedLicd {
  child: ChildProcess;
  ports: BoundPorts;
  /** The temp license file it runs from; `rewrite` replaces it (then send SIGHUP to reload). */
  file: string;
  rewrite(spec: LicdSpec): void;
  /** Everything written to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after 5 s; removes the temp folder. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Runs `licd -c <temp file>` as a child process and resolves once both ports accept. Ports are read from its
 * `listening` log line, so the default ephemeral ports work.
 */
export async function spawnLicd(spec: LicdSpec = {}, args: string[] = []): Promise<SpawnedLicd> {
  const dir = mkdtempSync(join(tmpdir(), 'licd-test-'));
  const file = join(dir, 'licd.yaml');
  writeFileSync(file, licdYaml(spec));
  const child = spawn(process.execPath, [LICD_BIN, '-c', file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  let gone = false;
  void exited.then(() => (gone = true));
  const stop = async () => {
    if (!gone) {
      child.kill('SIGCONT'); // a SIGSTOPped child must run to handle SIGTERM
      child.kill('SIGTERM');
      const guard = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(guard);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ports = await waitFor(
      () => {
        if (gone) throw new Error(`licd exited: ${err.trim()}`);
        for (const line of out.split('\n')) {
          if (!line.includes('"listening"')) continue;
          const j = JSON.parse(line) as { event?: string; ports?: BoundPorts };
          if (j.event === 'listening' && j.ports) return j.ports;
        }
        return undefined;
      },
      { timeout: 15_000, interval: 20, what: 'licd to listen' },
    );
    for (const port of [ports.license, ports.tokens]) {
      const c = await LineClient.connect(port);
      c.destroy();
    }
    return {
      child,
      ports,
      file,
      rewrite: (s) => writeFileSync(file, licdYaml({ ...s, ports: s.ports ?? ports })),
      stdout: () => out,
      stderr: () => err,
      exited,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * A minimal line-protocol client for tests: `request` sends a line and resolves the next line received; lines
 * the server sends on its own (a queued GRANTED) are read with `next`.
 */
export class LineClient {
  readonly socket: Socket;
  readonly #lines: string[] = [];
  #waiter: { resolve: (l: string) => void; reject: (e: Error) => void } | null = null;
  #closed = false;
  /** Resolves when the server closed the connection (or it failed). */
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    const decoder = new LineDecoder({ onLine: (l) => this.#push(l), onError: () => socket.destroy() }, 1 << 20);
    socket.on('data', (c: Buffer) => decoder.write(c));
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#closed = true;
        this.#waiter?.reject(new Error('connection closed'));
        this.#waiter = null;
        resolve();
      }),
    );
  }

  static connect(port: number, opts: { host?: string; localAddress?: string } = {}): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host: opts.host ?? '127.0.0.1', localAddress: opts.localAddress, noDelay: true });
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new LineClient(s));
      });
      s.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  #push(line: string): void {
    const w = this.#waiter;
    if (w) {
      this.#waiter = null;
      w.resolve(line);
    } else this.#lines.push(line);
  }

  send(line: string): void {
    this.socket.write(line + '\n');
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** The next line from the server; rejects after `timeout` ms or when the connection closes first. */
  next(timeout = 5_000): Promise<string> {
    const l = this.#lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    if (this.#closed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = null;
        reject(new Error(`no line within ${timeout}ms`));
      }, timeout);
      this.#waiter = {
        resolve: (x) => (clearTimeout(timer), resolve(x)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
    });
  }

  request(line: string, timeout?: number): Promise<string> {
    this.send(line);
    return this.next(timeout);
  }

  /** Lines up to and including the first one equal to `last` (STATUS ends in `END`). */
  async readUntil(last: string, timeout = 5_000): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const l = await this.next(timeout);
      out.push(l);
      if (l === last) return out;
    }
  }

  /** FIN: a polite close. */
  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** RST: an abrupt close, as a crashed client's kernel would send. */
  reset(): void {
    this.socket.resetAndDestroy();
  }
}

/**
 * An in-process licd for one test, with a connect function whose clients are destroyed (and the daemon stopped)
 * at teardown. `connect()` defaults to the license port.
 */
export async function licdForTest(
  t: { teardown(fn: () => unknown): void },
  spec: LicdSpec = {},
): Promise<{ licd: InProcessLicd; connect: (port?: number) => Promise<LineClient> }> {
  const licd = await startLicd(spec);
  const clients: LineClient[] = [];
  t.teardown(async () => {
    for (const c of clients) c.destroy();
    await licd.stop();
  });
  const connect = async (port = licd.ports.license) => {
    const c = await LineClient.connect(port);
    clients.push(c);
    return c;
  };
  return { licd, connect };
}
