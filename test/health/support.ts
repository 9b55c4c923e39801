/** Shared pieces of the health tests: check configs, a recording subject, small real TCP servers. */
import net from 'node:net';
import { DEFAULTS, type CheckConfig } from '../../src/config/proxy-config.ts';
import type { CheckResult, HealthSubject } from '../../src/health/types.ts';

export function checkConfig(over: Partial<CheckConfig> = {}): CheckConfig {
  return { ...DEFAULTS.pool.check, port: 'main', ports: [], ...over };
}

/** A HealthSubject that remembers every call; `statuses` is the monitor's text after each check. */
export class RecordingSubject implements HealthSubject {
  readonly host: string;
  readonly ports: Record<string, number>;
  readonly transitions: Array<{ state: 'up' | 'down'; reason: string }> = [];
  readonly checks: CheckResult[] = [];
  readonly statuses: string[] = [];
  /** Set by the test to have the post-check status text recorded. */
  statusOf?: () => string;

  constructor(host: string, ports: Record<string, number>) {
    this.host = host;
    this.ports = ports;
  }

  setHealth(state: 'up' | 'down', reason: string): void {
    this.transitions.push({ state, reason });
  }

  recordCheck(result: CheckResult): void {
    this.checks.push(result);
    // The monitor applies the result right after this call returns, synchronously.
    const statusOf = this.statusOf;
    if (statusOf) queueMicrotask(() => this.statuses.push(statusOf()));
  }

  /** Status texts with consecutive repeats folded: the sequence of visible states. */
  get statusSequence(): string[] {
    return this.statuses.filter((s, i, all) => i === 0 || all[i - 1] !== s);
  }
}

export interface TestServer {
  port: number;
  /** Connections accepted so far, with their time. */
  accepted: number[];
  close(): Promise<void>;
}

/** A real listening server on 127.0.0.1:0; `onConnection` decides what each connection gets. */
export async function listen(onConnection: (socket: net.Socket) => void = (s) => s.end()): Promise<TestServer> {
  const sockets = new Set<net.Socket>();
  const accepted: number[] = [];
  const server = net.createServer((socket) => {
    accepted.push(Date.now());
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    // Flowing, so the server sees the client's FIN even behind unread bytes (handlers attach in this same tick).
    socket.resume();
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  let closed: Promise<void> | undefined;
  return {
    port,
    accepted,
    close() {
      closed ??= new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      });
      return closed;
    },
  };
}

/** A port on 127.0.0.1 where nothing listens (connect is refused). */
export async function closedPort(): Promise<number> {
  const s = await listen();
  await s.close();
  return s.port;
}

/**
 * A server that answers each connection's first line with `OK` or `FAIL` by its current `healthy` flag: a
 * send_expect target whose health the test switches without closing ports.
 */
export async function toggleServer(): Promise<TestServer & { healthy: boolean; passed: number[] }> {
  const state = { healthy: true };
  /** When each check was answered OK (a check accepted before `healthy` turned true may still pass). */
  const passed: number[] = [];
  const server = await listen((socket) => {
    socket.setEncoding('utf8');
    socket.once('data', () => {
      if (state.healthy) passed.push(Date.now());
      socket.end(state.healthy ? 'OK\n' : 'FAIL\n');
    });
  });
  return {
    ...server,
    passed,
    get healthy() {
      return state.healthy;
    },
    set healthy(v: boolean) {
      state.healthy = v;
    },
  };
}

/** Accepts connections and never answers: a hung application behind a live kernel. */
export function silentServer(): Promise<TestServer> {
  return listen(() => {});
}

/** A STATUS-speaking server that answers with fixed text (a licd stand-in for verdict cases licd cannot show). */
export function statusServer(text: () => string): Promise<TestServer> {
  return listen((socket) => {
    socket.setEncoding('utf8');
    socket.once('data', () => socket.end(text()));
  });
}

/** Checks received by a server in [from, to). */
export function countBetween(times: readonly number[], from: number, to: number): number {
  return times.filter((t) => t >= from && t < to).length;
}
