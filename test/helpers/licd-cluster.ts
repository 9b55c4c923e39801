/**
 * A redundant licd set (backup pair or triad) of real `licd` processes on loopback, with a TCP relay on every
 * peer link so a test can cut a link while the client ports stay open:
 *
 *   const set = await LicdCluster.start({ mode: 'triad' });
 *   t.teardown(() => set.close());
 *   const m = await set.waitMaster();            // index of the member that reports (MASTER)
 *   set.kill(m); set.stop(1); set.cont(1);       // SIGKILL, SIGSTOP, SIGCONT
 *   set.isolate(0); set.healAll();               // blackhole every peer link of member 0, then restore
 *   await set.restart(m);                        // same ports, same license file
 *
 * Member i reaches member j through relay R[i][j] (its `peers` list names the relays); a cut blackholes both
 * directions: bytes are read and dropped, nothing is reset, as a lost route looks to TCP.
 */
import { freePorts } from './ports.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { LicdStatus } from '../../src/licd/status.ts';
import { DEFAULT_FEATURES, LICD_BIN, type FeatureSpec } from './licd.ts';
import { waitFor } from './wait.ts';

export interface ClusterSpec {
  mode: 'backup' | 'triad';
  /** Member names in order (default: a b c / primary backup). */
  names?: string[];
  features?: FeatureSpec[];
  /** Peer heartbeat, default `600ms` (a loaded CI machine stalls for a few hundred ms; 3 silent heartbeats lose a peer). */
  heartbeat?: string;
  /** Session heartbeat_timeout, default `30s`. */
  heartbeatTimeout?: string;
  /** `redundancy.resume_window` (default: licd's, 30s). */
  resumeWindow?: string;
  /** `redundancy.hold_on_disconnect` (default: licd's, 0). */
  holdOnDisconnect?: string;
  /** Write a secret file for every member (default true). */
  secret?: boolean;
  logLevel?: string;
}

export interface MemberPorts {
  license: number;
  tokens: number;
  peer: number;
}

type MemberState = 'running' | 'stopped' | 'dead';

/** A relay for one direction of one peer link. */
class Relay {
  readonly server: Server;
  port = 0;
  target = 0;
  blackhole = false;
  readonly #pairs = new Set<[Socket, Socket | null]>();

  constructor() {
    this.server = createServer((s) => this.#accept(s));
  }

  listen(): Promise<void> {
    return new Promise((resolve) =>
      this.server.listen({ host: '127.0.0.1', port: 0 }, () => {
        this.port = (this.server.address() as { port: number }).port;
        resolve();
      }),
    );
  }

  #accept(a: Socket): void {
    a.on('error', () => {});
    if (this.blackhole || !this.target) {
      const pair: [Socket, Socket | null] = [a, null];
      this.#pairs.add(pair);
      a.on('data', () => {});
      a.on('close', () => this.#pairs.delete(pair));
      if (!this.target) a.destroy();
      return;
    }
    const b = connect({ host: '127.0.0.1', port: this.target, noDelay: true });
    a.setNoDelay(true);
    b.on('error', () => {});
    const pair: [Socket, Socket | null] = [a, b];
    this.#pairs.add(pair);
    const onA = (c: Buffer) => {
      if (!this.blackhole) b.write(c);
    };
    const onB = (c: Buffer) => {
      if (!this.blackhole) a.write(c);
    };
    a.on('data', onA);
    b.on('data', onB);
    const close = () => {
      a.destroy();
      b.destroy();
      this.#pairs.delete(pair);
    };
    a.on('close', close);
    b.on('close', close);
  }

  /** Stops forwarding in both directions without closing anything. */
  cut(): void {
    this.blackhole = true;
  }

  /** Forwards again; connections opened during the cut are dropped so members open fresh ones. */
  heal(): void {
    if (!this.blackhole) return;
    this.blackhole = false;
    for (const [a, b] of [...this.#pairs]) {
      a.destroy();
      b?.destroy();
    }
  }

  close(): Promise<void> {
    for (const [a, b] of this.#pairs) {
      a.destroy();
      b?.destroy();
    }
    return new Promise((r) => this.server.close(() => r()));
  }
}

export class ClusterMember {
  readonly index: number;
  readonly name: string;
  readonly file: string;
  ports: MemberPorts = { license: 0, tokens: 0, peer: 0 };
  child: ChildProcess | null = null;
  state: MemberState = 'dead';
  #out = '';
  #exited: Promise<unknown> = Promise.resolve();

  constructor(index: number, name: string, file: string) {
    this.index = index;
    this.name = name;
    this.file = file;
  }

  get output(): string {
    return this.#out;
  }

  async spawn(logLevel: string): Promise<void> {
    const child = spawn(process.execPath, [LICD_BIN, '-c', this.file, '--log-level', process.env.LICD_SET_LOG ?? logLevel], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.state = 'running';
    this.#out = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      this.#out += s;
      if (this.#out.length > 4_000_000) this.#out = this.#out.slice(-1_000_000);
    });
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.#out += s));
    this.#exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        if (this.child === child) this.state = 'dead';
        resolve(code ?? signal);
      }),
    );
    await waitFor(
      async () => {
        if (this.state === 'dead') throw new Error(`licd ${this.name} exited: ${this.#out.slice(-2000)}`);
        return (await canConnect(this.ports.license)) && (await canConnect(this.ports.peer));
      },
      { timeout: 20_000, interval: 30, what: `licd ${this.name} to listen` },
    );
  }

  signal(sig: NodeJS.Signals): void {
    if (this.child && this.state !== 'dead') this.child.kill(sig);
  }

  async kill(): Promise<void> {
    if (!this.child || this.state === 'dead') return;
    this.child.kill('SIGCONT');
    this.child.kill('SIGKILL');
    await this.#exited;
    this.state = 'dead';
  }
}

export class LicdCluster {
  readonly spec: ClusterSpec;
  readonly members: ClusterMember[] = [];
  /** relays[i][j]: member i's way to member j. */
  readonly relays: Array<Array<Relay | null>> = [];
  readonly dir: string;

  private constructor(spec: ClusterSpec, dir: string) {
    this.spec = spec;
    this.dir = dir;
  }

  static async start(spec: ClusterSpec): Promise<LicdCluster> {
    const n = spec.mode === 'triad' ? 3 : 2;
    const names = spec.names ?? (spec.mode === 'triad' ? ['a', 'b', 'c'] : ['primary', 'backup']);
    const dir = mkdtempSync(join(tmpdir(), 'licd-set-'));
    const set = new LicdCluster(spec, dir);
    try {
      for (let i = 0; i < n; i++) {
        const row: Array<Relay | null> = [];
        for (let j = 0; j < n; j++) {
          if (i === j) row.push(null);
          else {
            const r = new Relay();
            await r.listen();
            row.push(r);
          }
        }
        set.relays.push(row);
      }
      if (spec.secret !== false) writeFileSync(join(dir, 'peer.secret'), 'a-test-secret-of-enough-length\n');
      const free = await freePorts(3 * n);
      for (let i = 0; i < n; i++) {
        const m = new ClusterMember(i, names[i]!, join(dir, `${names[i]}.yaml`));
        set.members.push(m);
        // Fixed ports, so a restarted member is found where it was by clients and relays.
        m.ports = { license: free[3 * i]!, tokens: free[3 * i + 1]!, peer: free[3 * i + 2]! };
        set.#writeConfig(m, m.ports);
        for (let j = 0; j < n; j++) if (j !== i) set.relays[j]![i]!.target = m.ports.peer;
      }
      await Promise.all(set.members.map((m) => m.spawn(spec.logLevel ?? 'warn')));
      return set;
    } catch (err) {
      await set.close();
      throw err;
    }
  }

  #writeConfig(m: ClusterMember, ports: MemberPorts): void {
    const n = this.spec.mode === 'triad' ? 3 : 2;
    const peers: string[] = [];
    for (let j = 0; j < n; j++) if (j !== m.index) peers.push(`127.0.0.1:${this.relays[m.index]![j]!.port}`);
    const doc = {
      server: { name: m.name, host: '127.0.0.1', ports, heartbeat_timeout: this.spec.heartbeatTimeout ?? '30s' },
      features: this.spec.features ?? DEFAULT_FEATURES,
      redundancy: {
        mode: this.spec.mode,
        peers,
        order: m.index,
        heartbeat: this.spec.heartbeat ?? '600ms',
        ...(this.spec.resumeWindow ? { resume_window: this.spec.resumeWindow } : {}),
        ...(this.spec.holdOnDisconnect ? { hold_on_disconnect: this.spec.holdOnDisconnect } : {}),
        ...(this.spec.secret !== false ? { secret_file: 'peer.secret' } : {}),
      },
    };
    writeFileSync(m.file, stringify(doc));
  }

  get size(): number {
    return this.members.length;
  }

  kill(i: number): Promise<void> {
    return this.members[i]!.kill();
  }

  stop(i: number): void {
    const m = this.members[i]!;
    m.signal('SIGSTOP');
    if (m.state === 'running') m.state = 'stopped';
  }

  cont(i: number): void {
    const m = this.members[i]!;
    m.signal('SIGCONT');
    if (m.state === 'stopped') m.state = 'running';
  }

  async restart(i: number): Promise<void> {
    const m = this.members[i]!;
    await m.kill();
    await m.spawn(this.spec.logLevel ?? 'warn');
  }

  /** Blackholes the link between members i and j (both directions). */
  cut(i: number, j: number): void {
    this.relays[i]![j]!.cut();
    this.relays[j]![i]!.cut();
  }

  heal(i: number, j: number): void {
    this.relays[i]![j]!.heal();
    this.relays[j]![i]!.heal();
  }

  isolate(i: number): void {
    for (let j = 0; j < this.size; j++) if (j !== i) this.cut(i, j);
  }

  healAll(): void {
    for (let i = 0; i < this.size; i++) for (let j = i + 1; j < this.size; j++) this.heal(i, j);
  }

  /** STATUS json of member i, or null when it does not answer within `timeout`. */
  status(i: number, timeout = 1_500): Promise<LicdStatus | null> {
    const m = this.members[i]!;
    if (m.state !== 'running') return Promise.resolve(null);
    return queryStatus(m.ports.license, timeout);
  }

  async statuses(timeout = 1_500): Promise<Array<LicdStatus | null>> {
    return Promise.all(this.members.map((_, i) => this.status(i, timeout)));
  }

  /** Waits until exactly one member reports (MASTER) (and, for a triad, a follower is synced); returns its index. */
  async waitMaster(opts: { timeout?: number; not?: number } = {}): Promise<number> {
    return waitFor(
      async () => {
        const all = await this.statuses();
        const masters = all.flatMap((s, i) => (s?.master ? [i] : []));
        if (masters.length !== 1 || masters[0] === opts.not) return undefined;
        return masters[0]! + 1;
      },
      { timeout: opts.timeout ?? 20_000, interval: 50, what: 'one master' },
    ).then((i) => i - 1);
  }

  /** The members' log lines (time, member, message), for a failed test's output. */
  dump(): string {
    const lines: Array<[number, string]> = [];
    for (const m of this.members) {
      for (const l of m.output.split('\n')) {
        try {
          const j = JSON.parse(l) as { time: number; msg: string };
          lines.push([j.time, `${new Date(j.time).toISOString().slice(17, 23)} ${m.name}: ${j.msg}`]);
        } catch {
          if (l.trim()) lines.push([0, `${m.name}: ${l}`]);
        }
      }
    }
    return lines.sort((a, b) => a[0] - b[0]).map((x) => x[1]).join('\n');
  }

  /**
   * Waits until every running member says `paired and synced` and exactly one reports (MASTER); returns its index.
   * Members that start at different times may first elect a higher order and then hand over to the lowest.
   */
  async waitSynced(timeout = 20_000): Promise<number> {
    return waitFor(
      async () => {
        const all = await this.statuses();
        const running = this.members.filter((m) => m.state === 'running').length;
        const live = all.filter((s) => s !== null);
        if (live.length !== running || !live.every((s) => s!.redundancy?.state === 'paired and synced')) return undefined;
        const masters = all.flatMap((s, i) => (s?.master ? [i] : []));
        // Settled: the master is the lowest running order (a higher one hands over once the lowest has synced).
        const lowest = this.members.findIndex((m) => m.state === 'running');
        return masters.length === 1 && masters[0] === lowest ? masters[0]! + 1 : undefined;
      },
      { timeout, interval: 50, what: 'a synced set with one master' },
    ).then((i) => i - 1);
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => m.kill()));
    await Promise.all(this.relays.flat().map((r) => r?.close()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One `STATUS json` on a fresh connection; null on any failure or timeout. */
export function queryStatus(port: number, timeout: number): Promise<LicdStatus | null> {
  return new Promise((resolve) => {
    let buf = '';
    let done = false;
    const finish = (v: LicdStatus | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const s = connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => finish(null), timeout);
    s.setEncoding('utf8');
    s.on('connect', () => s.write('STATUS json\n'));
    s.on('data', (c: string) => {
      buf += c;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      try {
        const j = JSON.parse(buf.slice(0, nl)) as LicdStatus;
        finish(typeof j === 'object' && j && 'server' in j ? j : null);
      } catch {
        finish(null);
      }
    });
    s.on('error', () => finish(null));
    s.on('close', () => finish(null));
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/**
 * A stand-in for the balancer in `mode: master`: new connections go to `target` (set by the test from the
 * members' STATUS), existing ones are left alone. Connections to a dead target fail like a dead server would.
 */
export class Forwarder {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  port = 0;
  target = 0;

  private constructor() {
    this.#server = createServer((s) => this.#accept(s));
  }

  static async start(target = 0): Promise<Forwarder> {
    const f = new Forwarder();
    f.target = target;
    await new Promise<void>((r) => f.#server.listen({ host: '127.0.0.1', port: 0 }, () => r()));
    f.port = (f.#server.address() as { port: number }).port;
    return f;
  }

  #accept(s: Socket): void {
    const u = connect({ host: '127.0.0.1', port: this.target, noDelay: true });
    s.setNoDelay(true);
    for (const x of [s, u]) {
      this.#sockets.add(x);
      x.on('error', () => {});
      x.on('close', () => {
        this.#sockets.delete(x);
        s.destroy();
        u.destroy();
      });
    }
    s.pipe(u).pipe(s);
  }

  close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    return new Promise((r) => this.#server.close(() => r()));
  }
}
