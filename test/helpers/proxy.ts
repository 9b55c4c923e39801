/**
 * Builds ProxyConfig objects for tests with every default from DEFAULTS, and starts a ProxyRuntime on ephemeral
 * ports that is stopped at teardown. Servers default to `check.type: none` (UP at once) unless a spec says
 * otherwise.
 */
import { connect, type Socket } from 'node:net';
import type { ExecutionContext } from 'ava';
import type { HostPort } from '../../src/common/address.ts';
import pino from 'pino';
import { silentLogger, type Logger } from '../../src/common/logger.ts';
import {
  DEFAULTS,
  type CheckConfig,
  type FailbackConfig,
  type FrontendConfig,
  type GlobalConfig,
  type PoolConfig,
  type ProxyConfig,
  type ServerConfig,
  type TimeoutsConfig,
} from '../../src/config/proxy-config.ts';
import { EventLog } from '../../src/proxy/event-log.ts';
import { Pool } from '../../src/proxy/pool.ts';
import { ProxyRuntime, type RuntimeOptions } from '../../src/proxy/runtime.ts';

export interface ServerSpec extends Partial<Omit<ServerConfig, 'name' | 'ports'>> {
  name: string;
  /** Shorthand for a single-port pool: `ports: { main: port }`. */
  port?: number;
  ports?: Record<string, number>;
}

export interface PoolSpec extends Partial<Omit<PoolConfig, 'name' | 'servers' | 'timeouts' | 'check' | 'failback'>> {
  name: string;
  timeouts?: Partial<TimeoutsConfig>;
  check?: Partial<CheckConfig>;
  failback?: Partial<FailbackConfig>;
  servers: ServerSpec[];
}

export interface FrontendSpec extends Partial<Omit<FrontendConfig, 'name' | 'pool'>> {
  name: string;
  pool: string;
}

export interface ConfigSpec {
  global?: Partial<GlobalConfig>;
  pools: PoolSpec[];
  frontends?: FrontendSpec[];
}

const LOOPBACK0: HostPort = { host: '127.0.0.1', port: 0 };

export function makeServer(spec: ServerSpec, poolPorts: Record<string, number>): ServerConfig {
  const ports = spec.ports ?? (spec.port !== undefined ? { main: spec.port } : {});
  return {
    ...DEFAULTS.server,
    host: '127.0.0.1',
    ...spec,
    ports: { ...poolPorts, ...ports },
  };
}

export function makePool(spec: PoolSpec): PoolConfig {
  const d = DEFAULTS.pool;
  const first = spec.servers[0];
  const poolPorts = spec.ports ?? (first?.ports ? Object.fromEntries(Object.keys(first.ports).map((k) => [k, 1])) : { main: 1 });
  const portNames = Object.keys(poolPorts);
  return {
    mode: d.mode,
    balance: d.balance,
    retries: d.retries,
    redispatch: d.redispatch,
    tcpKeepalive: d.tcpKeepalive,
    affinity: { ...d.affinity },
    protocol: spec.route === 'feature' || spec.retryDenied ? 'licd' : d.protocol,
    route: d.route,
    retryDenied: d.retryDenied,
    ...spec,
    ports: poolPorts,
    timeouts: { ...d.timeouts, ...spec.timeouts },
    check: {
      ...d.check,
      type: 'none',
      port: portNames[0]!,
      ports: [],
      requireFeatures: [],
      ...spec.check,
    },
    failback: { ...d.failback, ...spec.failback },
    servers: spec.servers.map((s) => makeServer(s, poolPorts)),
  };
}

export function makeFrontend(spec: FrontendSpec, pools: readonly PoolConfig[]): FrontendConfig {
  const pool = pools.find((p) => p.name === spec.pool);
  return {
    ...DEFAULTS.frontend,
    listen: LOOPBACK0,
    port: pool ? Object.keys(pool.ports)[0]! : 'main',
    ...spec,
  };
}

/** A whole config; without `frontends`, one frontend per pool named like the pool. */
export function makeConfig(spec: ConfigSpec): ProxyConfig {
  const pools = spec.pools.map(makePool);
  const frontends = (spec.frontends ?? spec.pools.map((p) => ({ name: p.name, pool: p.name }))).map((f) => makeFrontend(f, pools));
  return {
    file: 'test.yaml',
    global: { ...DEFAULTS.global, ...spec.global },
    stats: null,
    pools,
    frontends,
    daemons: [],
  };
}

/** A bare Pool (no listener) for selection tests. */
export function makeTestPool(spec: PoolSpec, opts: { events?: EventLog } = {}): Pool {
  return new Pool(makePool(spec), { log: silentLogger, events: opts.events ?? new EventLog() });
}

export async function startProxy(t: ExecutionContext, config: ProxyConfig | ConfigSpec, opts: RuntimeOptions = {}): Promise<ProxyRuntime> {
  const cfg = 'file' in config ? config : makeConfig(config);
  const rt = new ProxyRuntime(cfg, opts);
  await rt.start();
  t.teardown(() => rt.stop(0));
  return rt;
}

/** Connects to 127.0.0.1:port (optionally from another loopback address); resolves once connected. */
export function connectClient(t: ExecutionContext | null, port: number, opts: { localAddress?: string; allowHalfOpen?: boolean } = {}): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress: opts.localAddress, allowHalfOpen: opts.allowHalfOpen ?? false });
    t?.teardown(() => void s.destroy());
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Resolves with every byte the socket receives until the peer ends or closes it, and whether it ended cleanly. */
export function readAll(s: Socket): Promise<{ data: Buffer; error: string | null }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: string | null = null;
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    s.on('close', () => resolve({ data: Buffer.concat(chunks), error }));
  });
}

/** Resolves with the first `n` bytes (or fewer if the socket closes first). */
export function readBytes(s: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const done = (): void => {
      s.off('data', onData);
      s.off('close', done);
      resolve(Buffer.concat(chunks));
    };
    const onData = (c: Buffer): void => {
      chunks.push(c);
      got += c.length;
      if (got >= n) done();
    };
    s.on('data', onData);
    s.on('close', done);
  });
}

/** Sends a line and resolves with the next full line received. */
export function ask(s: Socket, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (c: Buffer): void => {
      buf += c.toString('utf8');
      const i = buf.indexOf('\n');
      if (i >= 0) {
        cleanup();
        resolve(buf.slice(0, i));
      }
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error(`closed before answering "${line}"`));
    };
    const cleanup = (): void => {
      s.off('data', onData);
      s.off('close', onClose);
    };
    s.on('data', onData);
    s.on('close', onClose);
    s.write(`${line}\n`);
  });
}

/** A pino logger that keeps every line as an object, for asserting on connection log lines. */
export function captureLogger(level: 'info' | 'debug' = 'info'): { log: Logger; lines: () => Record<string, unknown>[]; closed: () => Record<string, unknown>[] } {
  const raw: string[] = [];
  const log = pino({ level }, { write: (s: string) => void raw.push(s) });
  const lines = (): Record<string, unknown>[] => raw.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log, lines, closed: () => lines().filter((l) => l.msg === 'connection closed') };
}
