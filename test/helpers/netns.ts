/**
 * Network namespaces for tests that need real machines on a LAN (a keepalived pair moving a virtual IP): one hub
 * namespace holding a bridge, and host namespaces joined to it by veth pairs, each with its own `eth0`, loopback and
 * address. Nothing is created in the caller's own namespace (no interface, no route), so runs in parallel never
 * collide and a crashed run touches nothing else.
 *
 *   const why = netnsUnavailable(['keepalived']);      // a reason to skip, or null
 *   const lab = await NetnsLab.create({ subnet: '10.77.0', hosts: { lb1: 11, lb2: 12 } });
 *   t.teardown(() => lab.close());                     // kills every process it started, deletes the namespaces
 *   const p = lab.spawn('lb1', ['keepalived', '-n', ...]);
 *
 * Names are `lpxha<pid>x<random>-<host>`: a namespace left by a test process that no longer runs (SIGKILLed before
 * its teardown) is removed by the next create().
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from './wait.ts';

const run = promisify(execFile);
const PREFIX = 'lpxha';

/** The absolute path of `cmd` on PATH (plus the sbin directories root has), or null. */
export function which(cmd: string): string | null {
  const dirs = new Set([...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin']);
  for (const dir of dirs) {
    if (!dir) continue;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return join(dir, cmd);
    } catch {
      /* not here */
    }
  }
  return null;
}

/**
 * Why network-namespace tests cannot run here (not root, `ip` missing, namespaces refused, or one of `tools`
 * missing), or null when they can. Checked by creating and deleting a namespace, since root in a container may
 * still be refused.
 */
export function netnsUnavailable(tools: string[] = []): string | null {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root (run as root, e.g. in CI)';
  for (const tool of ['ip', ...tools]) if (!which(tool)) return `${tool} is not installed`;
  const probe = `${PREFIX}${process.pid}xprobe`;
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (add.status !== 0) return `ip netns add failed: ${(add.stderr || add.error?.message || '').trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return null;
}

export interface LabSpec {
  /** First three octets of the /24, e.g. `10.77.0`; the hub's bridge is `.1`. */
  subnet: string;
  /** Host namespace -> last octet of its eth0 address. */
  hosts: Record<string, number>;
}

export interface LabProcess {
  child: ChildProcess;
  name: string;
  output: () => string;
  exited: Promise<number | string>;
}

export class NetnsLab {
  readonly id: string;
  readonly subnet: string;
  /** The namespace that holds the bridge (address `.1`): license servers, Redis and clients live here. */
  readonly hub: string;
  readonly #hosts: Map<string, string>;
  readonly #octets = new Map<string, number>();
  readonly #procs: LabProcess[] = [];
  readonly #onExit = () => this.#closeSync();
  #closed = false;

  private constructor(spec: LabSpec) {
    this.id = `${PREFIX}${process.pid}x${Math.random().toString(36).slice(2, 6)}`;
    this.subnet = spec.subnet;
    this.hub = `${this.id}-hub`;
    this.#hosts = new Map(Object.keys(spec.hosts).map((h) => [h, `${this.id}-${h}`]));
  }

  static async create(spec: LabSpec): Promise<NetnsLab> {
    removeOrphans();
    const lab = new NetnsLab(spec);
    process.once('exit', lab.#onExit);
    try {
      await lab.#build(spec);
    } catch (err) {
      await lab.close();
      throw err;
    }
    return lab;
  }

  /** The namespace name of a host (or of the hub). */
  ns(host: string): string {
    if (host === 'hub') return this.hub;
    const ns = this.#hosts.get(host);
    if (!ns) throw new Error(`no host ${host} in this lab`);
    return ns;
  }

  address(host: string): string {
    return host === 'hub' ? `${this.subnet}.1` : `${this.subnet}.${this.#octets.get(host)}`;
  }

  async #build(spec: LabSpec): Promise<void> {
    await ip('netns', 'add', this.hub);
    await ip('-n', this.hub, 'link', 'set', 'lo', 'up');
    await ip('-n', this.hub, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', this.hub, 'addr', 'add', `${spec.subnet}.1/24`, 'dev', 'br0');
    await ip('-n', this.hub, 'link', 'set', 'br0', 'up');
    let i = 0;
    for (const [host, octet] of Object.entries(spec.hosts)) {
      const ns = this.ns(host);
      this.#octets.set(host, octet);
      await ip('netns', 'add', ns);
      // Created in the hub, so no interface ever exists in the caller's namespace.
      await ip('-n', this.hub, 'link', 'add', `v${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      await ip('-n', this.hub, 'link', 'set', `v${i}`, 'master', 'br0', 'up');
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
      await ip('-n', ns, 'addr', 'add', `${spec.subnet}.${octet}/24`, 'dev', 'eth0');
      await ip('-n', ns, 'link', 'set', 'eth0', 'up');
      i++;
    }
  }

  /** Adds an address to the hub's bridge (a second client source address). */
  async addHubAddress(address: string): Promise<void> {
    await ip('-n', this.hub, 'addr', 'add', `${address}/24`, 'dev', 'br0');
  }

  /** The IPv4 addresses on a host's eth0 now. */
  async addresses(host: string): Promise<string[]> {
    const { stdout } = await run('ip', ['-n', this.ns(host), '-4', '-o', 'addr', 'show', 'dev', 'eth0'], { timeout: 5_000 });
    return [...stdout.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1]!);
  }

  /** Starts `argv` inside a host's namespace (`ip netns exec` execs it: the child's pid is the program's). */
  spawn(host: string, argv: string[], opts: { cwd?: string; name?: string; env?: NodeJS.ProcessEnv } = {}): LabProcess {
    if (this.#closed) throw new Error('lab closed');
    const child = spawn('ip', ['netns', 'exec', this.ns(host), ...argv], { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const keep = (s: string) => {
      out += s;
      // A long run's log must not grow without bound: keep the last 2 MB.
      if (out.length > 4_000_000) out = out.slice(-2_000_000);
    };
    child.stdout!.setEncoding('utf8').on('data', keep);
    child.stderr!.setEncoding('utf8').on('data', keep);
    child.stdin!.on('error', () => {});
    const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
    const p: LabProcess = { child, name: opts.name ?? `${host}:${argv[0]}`, output: () => out, exited };
    this.#procs.push(p);
    return p;
  }

  /**
   * A machine lost at once: its link goes down first (so nothing it held is closed towards the network: no FIN, no
   * RST, as after a power loss or a cut cable), then every process in its namespace is SIGKILLed. Resolves the
   * time the link was down.
   */
  async powerOff(host: string): Promise<number> {
    await ip('-n', this.ns(host), 'link', 'set', 'eth0', 'down');
    // The moment of the loss: nothing leaves the machine from here on.
    const at = Date.now();
    const pids = spawnSync('ip', ['netns', 'pids', this.ns(host)], { encoding: 'utf8' });
    for (const pid of (pids.stdout ?? '').split(/\s+/).filter(Boolean).map(Number)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    return at;
  }

  /**
   * Stops every process it started (SIGTERM so keepalived takes its VRRP child with it, SIGKILL after 3 s), then
   * deletes the namespaces (their veths and bridge go with them). Safe to call twice.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    process.off('exit', this.#onExit);
    const alive = this.#procs.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
    for (const p of alive) p.child.kill('SIGTERM');
    await Promise.race([Promise.all(alive.map((p) => p.exited)), new Promise((r) => setTimeout(r, 3_000))]);
    for (const p of alive) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.race([Promise.all(alive.map((p) => p.exited)), new Promise((r) => setTimeout(r, 2_000))]);
    for (const ns of [...this.#hosts.values(), this.hub]) killAndDelete(ns);
  }

  /** On process exit (a crashed run): no awaiting possible, so SIGKILL and delete synchronously. */
  #closeSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    for (const ns of [...this.#hosts.values(), this.hub]) killAndDelete(ns);
  }
}

async function ip(...args: string[]): Promise<void> {
  try {
    await run('ip', args, { timeout: 10_000 });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new Error(`ip ${args.join(' ')}: ${stderr || (err as Error).message}`);
  }
}

/** SIGKILLs what still runs in a namespace (e.g. keepalived's VRRP child) and deletes it. */
function killAndDelete(ns: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
  for (const pid of (pids.stdout ?? '').split(/\s+/).filter(Boolean).map(Number)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  spawnSync('ip', ['netns', 'del', ns]);
}

/** Namespaces of this helper whose creating test process is gone. */
function removeOrphans(): void {
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  for (const line of (list.stdout ?? '').split('\n')) {
    const m = /^(lpxha(\d+)x\w+-\w+)/.exec(line.trim());
    if (!m || alive(Number(m[2]))) continue;
    killAndDelete(m[1]!);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Polls until `host` holds `address` on eth0 (or no longer does), within `timeout`. */
export async function waitForAddress(lab: NetnsLab, host: string, address: string, present: boolean, timeout: number): Promise<number> {
  return waitFor(async () => ((await lab.addresses(host)).includes(address) === present ? Date.now() : 0), {
    timeout,
    interval: 20,
    what: `${address} ${present ? 'on' : 'off'} ${host}`,
  });
}
