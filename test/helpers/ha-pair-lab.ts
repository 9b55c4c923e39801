/**
 * The balancer pair of conf/examples/ha-pair/, run for real (issue 15, SPEC 9): three network namespaces on one
 * bridge, the example's files with only addresses, ports and paths changed.
 *
 *   hub  10.77.0.1   licd triad tri1..tri3, licd seat1 + seat2, Redis, every client (they use the VIP only)
 *   lb1  10.77.0.11  licproxy (lb1.yaml) + keepalived (keepalived-lb1.conf)
 *   lb2  10.77.0.12  licproxy (lb2.yaml) + keepalived (keepalived-lb2.conf)
 *   VIP  10.77.0.100 on whichever lb keepalived made MASTER
 *
 * The scenario: clients run through the VIP (a `licproxy checkout --hold` of the triad, held clients of the client
 * library, a short-checkout probe, source-bound clients whose license and token ports must meet one server); the
 * licproxy of the instance holding the VIP is SIGKILLed; keepalived's track_script fails, the VIP moves, the clients
 * reconnect through the other instance. Used by test/ha/vip-pair.test.ts and bench/ha-pair.ts.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { LICD, LICPROXY, REPO } from './cli.ts';
import type { ClientsSpec } from './ha-pair-clients.ts';
import { NetnsLab, netnsUnavailable, waitForAddress, which, type LabProcess } from './netns.ts';
import { waitFor } from './wait.ts';

const EXAMPLE = join(REPO, 'conf/examples/ha-pair');
const SUBNET = '10.77.0';
const VIP = `${SUBNET}.100`;
const HUB = `${SUBNET}.1`;
const REDIS_PASSWORD = 'ha-pair-test-redis-password';
const TRIAD = { tri1: 27100, tri2: 27110, tri3: 27120 } as const;
const SEATS = { seat1: 31110, seat2: 31120 } as const;
const PORTS = { triadLicense: 27000, seatsLicense: 31010, seatsTokens: 31011 };

/** Why the pair cannot run here, or null. */
export function haPairUnavailable(): string | null {
  const why = netnsUnavailable(['keepalived', 'redis-server', 'curl']);
  return why && `the balancer-pair scenario needs root, ip netns, keepalived, redis-server and curl: ${why}`;
}

/**
 * `kill`: SIGKILL of the licproxy process on a live machine (its kernel closes every connection at once, so licd
 * sees the upstream connections end). `power-off`: the machine is lost: its link goes down first, then every process
 * in it is SIGKILLed (nothing it held is closed towards the network, as after a power loss or a cut cable).
 */
export type PairFault = 'kill' | 'power-off';

export interface PairOptions {
  fault?: PairFault;
  /** Source addresses of the source-bound clients (one loop each). */
  boundClients?: number;
  /** Held clients of the client library, besides the `licproxy checkout --hold` process. */
  heldClients?: number;
  /** Progress lines (t.log in the test, stdout in the bench). */
  log?: (line: string) => void;
}

export interface PairResult {
  fault: PairFault;
  /** The instance that held the VIP and whose licproxy was killed, and the one that took over. */
  killed: string;
  survivor: string;
  /** Kill -> the VIP seen on the survivor's eth0 (polled with `ip addr`: late by the poll when the machine is loaded). */
  vipMoveMs: number;
  /** Kill -> the survivor's notify script logging MASTER (keepalived has set the VIP by then); null if not logged. */
  masterMs: number | null;
  /** Kill -> the VIP gone from the killed instance (null after a power-off: nobody removes it there). */
  vipReleasedMs: number | null;
  /** Kill -> the first checkout granted that started after the kill (so through the survivor). */
  firstGrantMs: number;
  /** `licproxy checkout --hold`: its output, and whether it printed "license lost". */
  holdOutput: string;
  holdLost: boolean;
  holdResumed: boolean;
  /** Held clients of the client library: how many, how many lost their handle. */
  held: number;
  heldLost: number;
  /**
   * Held seats the triad freed after the kill because their connection closed (licd's `IN ... reason=closed` of a
   * held user): licd frees a seat at once when its connection ends, and the killed licproxy's connections end.
   */
  heldFreedByClose: number;
  /** Source-bound clients: token connections answered UNKNOWN_HANDLE (misrouted), before and after the kill. */
  misrouted: number;
  boundOk: { before: number; after: number };
  boundFailed: number;
  /** Servers that granted bound clients, per source address, before the kill and after the move (one each when bindings hold). */
  boundServersBefore: Record<string, string[]>;
  boundServersAfter: Record<string, string[]>;
  /** Bound checkouts whose token connection got UNKNOWN_HANDLE because the kill ended their license connection. */
  boundLicenseEnded: number;
  /** Whether `cluster:` (Redis-shared state) was in the configs the instances ran. */
  clusterShared: boolean;
  /** The notify script's log lines, per instance. */
  notify: Record<string, string[]>;
}

interface Running {
  lab: NetnsLab;
  dir: string;
  licproxy: Record<string, LabProcess>;
  keepalived: Record<string, LabProcess>;
  clusterShared: boolean;
}

/** Runs the scenario once; everything it started is gone when it returns or throws. */
export async function runPairFailover(opts: PairOptions = {}): Promise<PairResult> {
  const log = opts.log ?? (() => {});
  const lab = await NetnsLab.create({ subnet: SUBNET, hosts: { lb1: 11, lb2: 12 } });
  const dir = mkdtempSync(join(tmpdir(), 'lpx-ha-pair-'));
  try {
    const running = await startPair(lab, dir, log);
    return await failover(running, opts, log);
  } catch (err) {
    log(`failed; last output:\n${diagnostics(lab)}`);
    throw err;
  } finally {
    await lab.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const labOutputs = new Map<NetnsLab, LabProcess[]>();

function diagnostics(lab: NetnsLab): string {
  return (labOutputs.get(lab) ?? [])
    .map((p) => `--- ${p.name}\n${p.output().split('\n').slice(-15).join('\n')}`)
    .join('\n');
}

function track(lab: NetnsLab, p: LabProcess): LabProcess {
  const list = labOutputs.get(lab) ?? [];
  list.push(p);
  labOutputs.set(lab, list);
  return p;
}

async function startPair(lab: NetnsLab, dir: string, log: (line: string) => void): Promise<Running> {
  // Redis, from the example file with this lab's address, directory and password.
  mkdirSync(join(dir, 'redis'));
  writeFileSync(
    join(dir, 'redis.conf'),
    `${readFileSync(join(EXAMPLE, 'redis.conf'), 'utf8')}\n# the test's overrides\nbind ${HUB} 127.0.0.1\ndir ${join(dir, 'redis')}\nrequirepass ${REDIS_PASSWORD}\nlogfile ""\ndaemonize no\n`,
  );
  const redis = track(lab, lab.spawn('hub', [which('redis-server')!, join(dir, 'redis.conf')], { name: 'redis' }));

  // licd: the example's files, on the hub's one address (ports told apart), peers over loopback (no secret).
  const licds: LabProcess[] = [];
  for (const [name, base] of Object.entries(TRIAD)) {
    const doc = YAML.parse(readFileSync(join(EXAMPLE, `licd-${name}.yaml`), 'utf8')) as Record<string, any>;
    doc.server.host = '0.0.0.0';
    doc.server.ports = { license: base, tokens: base + 1, peer: base + 2 };
    doc.server.allow = [`${SUBNET}.0/24`, '127.0.0.0/8'];
    doc.redundancy.peers = Object.entries(TRIAD)
      .filter(([other]) => other !== name)
      .map(([, p]) => `127.0.0.1:${p + 2}`);
    delete doc.redundancy.secret_file;
    licds.push(track(lab, spawnLicd(lab, dir, name, doc)));
  }
  for (const [name, license] of Object.entries(SEATS)) {
    const doc = YAML.parse(readFileSync(join(EXAMPLE, `licd-${name}.yaml`), 'utf8')) as Record<string, any>;
    doc.server.host = '0.0.0.0';
    doc.server.ports = { license, tokens: license + 1 };
    doc.server.allow = [`${SUBNET}.0/24`, '127.0.0.0/8'];
    licds.push(track(lab, spawnLicd(lab, dir, name, doc)));
  }

  // licproxy: the example's files, servers at the hub, Redis at the hub.
  const clusterShared = clusterKeyKnown();
  if (!clusterShared) log('licproxy does not know `cluster:` yet: the instances run without Redis-shared state');
  const licproxy: Record<string, LabProcess> = {};
  for (const lb of ['lb1', 'lb2']) {
    const doc = YAML.parse(readFileSync(join(EXAMPLE, `${lb}.yaml`), 'utf8')) as Record<string, any>;
    if (clusterShared) {
      doc.cluster.redis = `redis://:${REDIS_PASSWORD}@${HUB}:6379/0`;
      // The example's 50ms is for a machine that only balances; this one runs the whole lab on two loaded cores,
      // where a Redis answer can take longer and the instance would (rightly) place a client alone.
      doc.cluster.timeout = '1s';
    }
    else delete doc.cluster;
    for (const s of doc.pools.triad.servers) {
      const base = TRIAD[s.name as keyof typeof TRIAD];
      s.host = HUB;
      s.ports = { license: base, tokens: base + 1 };
    }
    for (const s of doc.pools.seats.servers) {
      const license = SEATS[s.name as keyof typeof SEATS];
      s.host = HUB;
      s.ports = { license, tokens: license + 1 };
    }
    const file = join(dir, `${lb}.yaml`);
    writeFileSync(file, YAML.stringify(doc));
    licproxy[lb] = track(lab, lab.spawn(lb, [process.execPath, LICPROXY, 'run', '-c', file], { cwd: REPO, name: `licproxy ${lb}` }));
  }

  // keepalived: the example's files with this lab's VIP and the notify script's paths.
  copyFileSync(join(EXAMPLE, 'licproxy-notify.sh'), join(dir, 'licproxy-notify.sh'));
  chmodSync(join(dir, 'licproxy-notify.sh'), 0o755);
  const keepalived: Record<string, LabProcess> = {};
  for (const lb of ['lb1', 'lb2']) {
    const conf = readFileSync(join(EXAMPLE, `keepalived-${lb}.conf`), 'utf8')
      .replaceAll('10.0.0.100/24', `${VIP}/24`)
      .replace(/notify "[^"]*"/, `notify "${join(dir, 'licproxy-notify.sh')} ${join(dir, `vrrp-${lb}.log`)}"`);
    const file = join(dir, `keepalived-${lb}.conf`);
    writeFileSync(file, conf);
    const pid = (what: string) => join(dir, `keepalived-${lb}-${what}.pid`);
    const argv = [which('keepalived')!, '-n', '-l', '-D', '-P', '-f', file, '-p', pid('main'), '-r', pid('vrrp'), '-c', pid('checkers')];
    keepalived[lb] = track(lab, lab.spawn(lb, argv, { name: `keepalived ${lb}` }));
  }

  const exitedEarly = () => {
    for (const p of [redis, ...licds, ...Object.values(licproxy), ...Object.values(keepalived)]) {
      if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`${p.name} exited early`);
    }
  };
  await waitFor(() => (exitedEarly(), redis.output().includes('Ready to accept connections')), { timeout: 20_000, what: 'redis' });
  await waitFor(() => (exitedEarly(), licds.every((p) => p.output().includes('"event":"listening"'))), { timeout: 60_000, what: 'the licd servers' });
  for (const lb of ['lb1', 'lb2']) {
    await waitFor(() => (exitedEarly(), healthOk(lab, lb)), { timeout: 60_000, interval: 200, what: `licproxy ${lb} /health` });
  }
  const vipOn = await waitFor(
    async () => {
      exitedEarly();
      const on = [];
      for (const lb of ['lb1', 'lb2']) if ((await lab.addresses(lb)).includes(VIP)) on.push(lb);
      return on.length === 1 ? on[0] : undefined;
    },
    { timeout: 30_000, interval: 100, what: 'the VIP on exactly one instance' },
  );
  log(`pair up: VIP ${VIP} on ${vipOn}`);
  return { lab, dir, licproxy, keepalived, clusterShared };
}

function spawnLicd(lab: NetnsLab, dir: string, name: string, doc: unknown): LabProcess {
  const file = join(dir, `licd-${name}.yaml`);
  writeFileSync(file, YAML.stringify(doc));
  return lab.spawn('hub', [process.execPath, LICD, '-c', file, '--log-level', 'info'], { cwd: REPO, name: `licd ${name}` });
}

function healthOk(lab: NetnsLab, lb: string): boolean {
  const r = spawnSync('ip', ['netns', 'exec', lab.ns(lb), which('curl')!, '-fsS', '-m', '1', 'http://127.0.0.1:8404/health'], { encoding: 'utf8', timeout: 3_000 });
  return r.status === 0;
}

/** True once licproxy's schema has the `cluster:` key (the Redis-shared state of SPEC 9). */
function clusterKeyKnown(): boolean {
  const r = spawnSync(process.execPath, [LICPROXY, 'check', '-c', join(EXAMPLE, 'lb1.yaml')], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
  return !/unknown key "cluster"/.test(r.stdout + r.stderr);
}

interface Line {
  at: number;
  k: string;
  [key: string]: unknown;
}

async function failover(r: Running, opts: PairOptions, log: (line: string) => void): Promise<PairResult> {
  const { lab, dir } = r;
  const sources: string[] = [];
  for (let i = 0; i < (opts.boundClients ?? 8); i++) {
    const a = `${SUBNET}.${50 + i}`;
    await lab.addHubAddress(a);
    sources.push(a);
  }
  const spec: ClientsSpec = {
    vip: VIP,
    triadPort: PORTS.triadLicense,
    seatsLicense: PORTS.seatsLicense,
    seatsTokens: PORTS.seatsTokens,
    sources,
    held: opts.heldClients ?? 10,
    probeEveryMs: 50,
    seconds: 150,
  };
  const clients = track(
    lab,
    lab.spawn('hub', [process.execPath, '--import', 'tsx', join(REPO, 'test/helpers/ha-pair-clients.ts'), JSON.stringify(spec)], { cwd: REPO, name: 'clients' }),
  );
  const lines = (): Line[] =>
    clients
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Line);
  const hold = track(
    lab,
    lab.spawn('hub', [process.execPath, LICPROXY, 'checkout', 'LS-DYNA', '-s', `${VIP}:${PORTS.triadLicense}`, '--hold', '3m', '--heartbeat', '1s', '--user', 'holder'], {
      cwd: REPO,
      name: 'checkout --hold',
    }),
  );
  await waitFor(() => hold.output().includes('holding for') || hold.child.exitCode !== null, { timeout: 30_000, what: '`licproxy checkout --hold` holding' });
  if (!hold.output().includes('holding for')) throw new Error(`checkout --hold: ${hold.output()}`);
  await waitFor(() => lines().some((l) => l.k === 'ready') || clients.child.exitCode !== null, { timeout: 60_000, what: 'the clients holding their seats' });
  if (!lines().some((l) => l.k === 'ready')) throw new Error(`clients: ${clients.output()}`);
  // Warm: every source has been served through the active instance.
  await waitFor(() => sources.every((s) => lines().some((l) => l.k === 'bound' && l.src === s && l.ok)), { timeout: 30_000, what: 'every bound client served once' });

  const killed = (await lab.addresses('lb1')).includes(VIP) ? 'lb1' : 'lb2';
  const survivor = killed === 'lb1' ? 'lb2' : 'lb1';
  const fault = opts.fault ?? 'kill';
  log(`${fault === 'kill' ? 'SIGKILL licproxy on' : 'power off'} ${killed} (holds the VIP)`);
  let killAt = Date.now();
  if (fault === 'kill') r.licproxy[killed]!.child.kill('SIGKILL');
  else killAt = await lab.powerOff(killed);

  const releasedAt = fault === 'kill' ? waitForAddress(lab, killed, VIP, false, 30_000) : null;
  const movedAt = await waitForAddress(lab, survivor, VIP, true, 30_000);
  const vipReleasedMs = releasedAt && (await releasedAt) - killAt;
  log(`VIP on ${survivor} after ${movedAt - killAt} ms`);
  const firstGrant = await waitFor(() => lines().find((l) => l.k === 'probe' && l.ok && (l.started as number) > killAt), {
    timeout: 30_000,
    what: 'a checkout granted through the surviving instance',
  });
  // The held clients resumed (or lost) their handles; the CLI client says which.
  await waitFor(() => /resumed .* on |license lost|exited/.test(hold.output()) || hold.child.exitCode !== null, { timeout: 30_000, what: 'checkout --hold to resume' });
  const heldCount = spec.held;
  await waitFor(
    () => {
      const after = lines().filter((l) => l.k === 'held' && l.at > killAt && (l.event === 'resumed' || l.event === 'lost'));
      return new Set(after.map((l) => l.i)).size >= heldCount;
    },
    { timeout: 40_000, what: 'every held client resumed or lost' },
  ).catch(() => log('not every held client reported a resume'));
  // Bound clients served through the survivor for a while.
  await waitFor(() => lines().filter((l) => l.k === 'bound' && l.ok && l.at > movedAt).length >= 4 * sources.length, {
    timeout: 30_000,
    what: 'bound clients served through the surviving instance',
  });

  clients.child.stdin!.end();
  await waitFor(() => lines().some((l) => l.k === 'done') || clients.child.exitCode !== null, { timeout: 20_000, what: 'the clients to finish' });
  hold.child.kill('SIGINT');
  await Promise.race([hold.exited, new Promise((res) => setTimeout(res, 10_000))]);

  const all = lines();
  const bound = all.filter((l) => l.k === 'bound');
  const serversOf = (keep: (l: Line) => boolean) => {
    const out: Record<string, string[]> = {};
    for (const l of bound) {
      if (!l.ok || !keep(l)) continue;
      const list = (out[l.src as string] ??= []);
      if (!list.includes(l.server as string)) list.push(l.server as string);
    }
    return out;
  };
  const summary = all.find((l) => l.k === 'summary');
  let heldFreedByClose = 0;
  for (const name of Object.keys(TRIAD)) {
    const p = (labOutputs.get(lab) ?? []).find((x) => x.name === `licd ${name}`);
    for (const line of p?.output().split('\n') ?? []) {
      if (!line.includes('"event":"IN"')) continue;
      const o = JSON.parse(line) as { time: number; user?: string; reason?: string };
      if (o.time >= killAt && /^(held\d+|holder)$/.test(o.user ?? '') && (o.reason === 'closed' || o.reason === 'error')) heldFreedByClose++;
    }
  }
  const notify: Record<string, string[]> = {};
  for (const lb of ['lb1', 'lb2']) {
    try {
      notify[lb] = readFileSync(join(dir, `vrrp-${lb}.log`), 'utf8').trim().split('\n');
    } catch {
      notify[lb] = [];
    }
  }
  const masterLine = notify[survivor]!.find((l) => / is now MASTER/.test(l) && Date.parse(l.split(' ')[0]!) >= killAt);
  return {
    masterMs: masterLine ? Date.parse(masterLine.split(' ')[0]!) - killAt : null,
    fault,
    killed,
    survivor,
    vipMoveMs: movedAt - killAt,
    vipReleasedMs,
    firstGrantMs: firstGrant.at - killAt,
    holdOutput: hold.output(),
    holdLost: /license lost/.test(hold.output()),
    holdResumed: /resumed .* on /.test(hold.output()),
    held: (summary?.held as number) ?? heldCount,
    heldLost: (summary?.lost as number) ?? heldCount,
    heldFreedByClose,
    misrouted: bound.filter((l) => l.misrouted).length,
    boundOk: { before: bound.filter((l) => l.ok && l.at < killAt).length, after: bound.filter((l) => l.ok && l.at > movedAt).length },
    boundFailed: bound.filter((l) => !l.ok && !l.misrouted).length,
    boundServersBefore: serversOf((l) => l.at < killAt),
    boundServersAfter: serversOf((l) => l.at > movedAt),
    boundLicenseEnded: bound.filter((l) => l.code === 'LICENSE_ENDED').length,
    clusterShared: r.clusterShared,
    notify,
  };
}

/** The figures as text lines (test log, bench output). */
export function describePair(r: PairResult): string[] {
  return [
    `${r.fault === 'kill' ? 'SIGKILL of licproxy' : 'power-off'} on ${r.killed}; VIP moved to ${r.survivor} (cluster state in Redis: ${r.clusterShared ? 'yes' : 'no'})`,
    `VIP move time (kill -> VIP on ${r.survivor}): ${r.masterMs ?? '?'} ms by the notify log, ${r.vipMoveMs} ms by polling ip addr${r.vipReleasedMs === null ? '' : ` (released by ${r.killed} after ${r.vipReleasedMs} ms)`}`,
    `kill -> first granted checkout through ${r.survivor}: ${r.firstGrantMs} ms`,
    `held licenses lost: ${r.heldLost + (r.holdLost ? 1 : 0)} of ${r.held + 1} (checkout --hold: ${r.holdLost ? 'license lost' : r.holdResumed ? 'resumed' : `no resume seen: ${r.holdOutput.trim().split('\n').slice(-3).join(' / ')}`})`,
    `held seats the triad freed at the kill (their licd connection closed): ${r.heldFreedByClose}`,
    `misrouted token connections: ${r.misrouted} (bound checkouts ok: ${r.boundOk.before} before, ${r.boundOk.after} after; failed during the move: ${r.boundFailed}, of which ${r.boundLicenseEnded} had their license connection cut by the kill)`,
    `bound clients on another server after the move: ${Object.keys(r.boundServersAfter).filter((s) => r.boundServersAfter[s]!.join() !== (r.boundServersBefore[s] ?? []).join()).length} of ${Object.keys(r.boundServersAfter).length}`,
    `notify ${r.killed}: ${r.notify[r.killed]!.map((l) => l.replace(/^\S+ \S+ /, '')).join(' | ')}`,
    `notify ${r.survivor}: ${r.notify[r.survivor]!.map((l) => l.replace(/^\S+ \S+ /, '')).join(' | ')}`,
  ];
}
