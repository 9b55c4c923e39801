/**
 * Shared pieces of the affinity end-to-end tests: licd children behind an in-process balancer, many client
 * addresses on loopback (each client binds its own 127.x.y.z), bounded concurrency, and a minimal line socket
 * whose connect can be started without waiting (to open two ports of one client at the same instant).
 */
import { connect, type Socket } from 'node:net';
import type { ExecutionContext } from 'ava';
import type { AffinityBy } from '../../../src/config/proxy-config.ts';
import type { ProxyRuntime, RuntimeOptions } from '../../../src/proxy/runtime.ts';
import { spawnLicd, type SpawnedLicd } from '../../helpers/licd.ts';
import { makeConfig, startProxy, type PoolSpec } from '../../helpers/proxy.ts';
import type { ProxyConfig } from '../../../src/config/proxy-config.ts';

/** Plenty of seats and tokens: these tests count routing, not license exhaustion. */
export const FEATURES = [
  { name: 'LS-DYNA', version: '2025.1', count: 100_000 },
  { name: 'MPPDYNA', count: 10_000_000, kind: 'tokens' as const },
];

/** licd children named `names`; stopped at teardown (pass null and stop them yourself in an after hook). */
export async function spawnLicds(t: ExecutionContext | null, names: string[]): Promise<SpawnedLicd[]> {
  const all = await Promise.all(names.map((name) => spawnLicd({ name, features: FEATURES })));
  t?.teardown(() => stopAll(all));
  return all;
}

export async function stopAll(licds: readonly SpawnedLicd[]): Promise<void> {
  await Promise.all(licds.map((l) => l.stop()));
}

export interface LicdProxyOptions {
  by: AffinityBy;
  ttl?: number;
  maxBindings?: number;
  pool?: Partial<PoolSpec>;
  runtime?: RuntimeOptions;
}

/** A pool `lic` of the given licd servers (names = licd names) and frontends `license` and `tokens`. */
export async function licdProxy(t: ExecutionContext, licds: SpawnedLicd[], names: string[], o: LicdProxyOptions): Promise<ProxyRuntime> {
  return startProxy(t, licdProxyConfig(licds, names, o), o.runtime);
}

export function licdProxyConfig(licds: SpawnedLicd[], names: string[], o: LicdProxyOptions): ProxyConfig {
  return makeConfig({
    global: { maxConnections: 50_000 },
    pools: [
      {
        name: 'lic',
        ports: { license: 1, tokens: 1 },
        affinity: { by: o.by, ttl: o.ttl ?? 3_600_000, maxBindings: o.maxBindings ?? 1_000_000 },
        timeouts: { connect: 3_000, idle: 0, queue: 10_000, clientFin: 30_000 },
        ...o.pool,
        servers: licds.map((l, i) => ({ name: names[i]!, ports: { license: l.ports.license, tokens: l.ports.tokens } })),
      },
    ],
    frontends: [
      { name: 'license', pool: 'lic', port: 'license' },
      { name: 'tokens', pool: 'lic', port: 'tokens' },
    ],
  });
}

/** The i-th client's own loopback address: 127.<prefix>.<hi>.<lo> (all of 127/8 is loopback on Linux). */
export function clientAddress(prefix: number, i: number): string {
  return `127.${prefix}.${Math.floor(i / 250) & 255}.${(i % 250) + 1}`;
}

/**
 * Runs `fn(i)` for i in [0, n) with at most `concurrency` in flight; rejects when `deadlineMs` passes (every load
 * loop bounded in count and time). Results in index order.
 */
export async function runBounded<T>(n: number, concurrency: number, deadlineMs: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  const deadline = Date.now() + deadlineMs;
  const worker = async (): Promise<void> => {
    while (next < n) {
      if (Date.now() > deadline) throw new Error(`load not done within ${deadlineMs}ms (${next}/${n} started)`);
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return out;
}

/** A line-protocol socket. `open` starts the TCP connect and returns at once; `connected` settles later. */
export class Line {
  readonly socket: Socket;
  readonly connected: Promise<void>;
  #buf = '';
  #lines: string[] = [];
  #waiter: ((l: string | null) => void) | null = null;
  #closed = false;

  private constructor(port: number, localAddress: string | undefined) {
    const s = (this.socket = connect({ host: '127.0.0.1', port, localAddress, noDelay: true }));
    this.connected = new Promise((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('error', reject);
    });
    this.connected.catch(() => {});
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      this.#buf += d;
      let i;
      while ((i = this.#buf.indexOf('\n')) >= 0) {
        this.#push(this.#buf.slice(0, i));
        this.#buf = this.#buf.slice(i + 1);
      }
    });
    s.on('error', () => {});
    s.on('close', () => {
      this.#closed = true;
      this.#waiter?.(null);
      this.#waiter = null;
    });
  }

  static open(port: number, localAddress?: string): Line {
    return new Line(port, localAddress);
  }

  static async connect(port: number, localAddress?: string): Promise<Line> {
    const l = new Line(port, localAddress);
    await l.connected;
    return l;
  }

  #push(line: string): void {
    const w = this.#waiter;
    if (w) {
      this.#waiter = null;
      w(line);
    } else this.#lines.push(line);
  }

  /** The next line, or null when the connection closed (or nothing came within `timeout`). */
  next(timeout = 10_000): Promise<string | null> {
    const l = this.#lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiter = null;
        resolve(null);
      }, timeout);
      this.#waiter = (x) => {
        clearTimeout(timer);
        resolve(x);
      };
    });
  }

  request(line: string, timeout?: number): Promise<string | null> {
    this.socket.write(line + '\n');
    return this.next(timeout);
  }

  get closed(): boolean {
    return this.#closed;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** `handle=<h>` of a GRANTED line. */
export function handleOf(granted: string | null): string | undefined {
  return granted?.match(/\bhandle=(\S+)/)?.[1];
}

/** `server=<name>` of a HELLO answer. */
export function serverOf(ok: string | null): string | undefined {
  return ok?.match(/\bserver=(\S+)/)?.[1];
}
