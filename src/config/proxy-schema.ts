/**
 * Reads licproxy.yaml (SPEC 2) into a frozen ProxyConfig. One pass records every problem with its file, line,
 * column and YAML path; cross references (frontend -> pool -> named port) are checked after the sections are read.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isScalar } from 'yaml';
import { formatHostPort, type HostPort } from '../common/address.ts';
import { formatDuration } from '../common/duration.ts';
import type { ConfigIssue } from '../common/errors.ts';
import type { Cursor } from './cursor.ts';
import { nearest } from './nearest.ts';
import { MAX_TOKEN_FILE_BYTES, adminTokenProblem } from '../stats/admin-token.ts';
import { buildFromYaml, readConfigText } from './yaml-file.ts';
import { ALERT_KEYS, EVENT_FILE_KEYS, readAlerts, readEventFile } from './alerts-schema.ts';
import { readCluster } from './cluster-config.ts';
import {
  DEFAULTS,
  type AffinityConfig,
  type CheckConfig,
  type FailbackConfig,
  type FailoverConfig,
  type FrontendConfig,
  type OverflowConfig,
  type GlobalConfig,
  type PoolConfig,
  type ProxyConfig,
  type ServerConfig,
  type StatsConfig,
  type TimeoutsConfig,
} from './proxy-config.ts';

export const DEFAULT_CONFIG_FILE = 'conf/licproxy.yaml';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const NAME_HINT = 'use letters, digits, "_", "-" and "." (starting with a letter or digit)';
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const MODES = ['balance', 'failover', 'master'] as const;
const BALANCES = ['roundrobin', 'leastconn', 'source', 'first', 'seats'] as const;
const CHECK_TYPES = ['none', 'tcp', 'send_expect', 'lmstat', 'external'] as const;
/** Worker processes beyond a few per core only cost memory; 64 bounds a typo. */
const MAX_WORKERS = 64;
const WORKER_ACCEPT = ['round_robin', 'shared'] as const;
const ADMIN_STATES = ['ready', 'drain', 'maint'] as const;

/** The keys of each section, the single list both validation and the docs' reference table are checked against. */
export const KEYS = {
  root: ['global', 'stats', 'defaults', 'pools', 'frontends', 'daemons', 'alerts', 'cluster'],
  global: ['log_level', 'max_connections', 'grace', 'workers', 'worker_accept', 'orphan_grace'],
  stats: ['listen', 'refresh', 'admin', 'history', 'events'],
  admin: ['token_file', 'insecure'],
  history: ['dir', 'keep'],
  alert: ALERT_KEYS,
  events: EVENT_FILE_KEYS,
  poolSettings: ['mode', 'balance', 'retries', 'redispatch', 'timeouts', 'tcp_keepalive', 'check', 'affinity', 'failback', 'overflow', 'failover', 'protocol', 'route', 'retry_denied'],
  pool: [
    'mode', 'balance', 'retries', 'redispatch', 'timeouts', 'tcp_keepalive', 'check', 'affinity', 'failback', 'overflow', 'failover',
    'protocol', 'route', 'retry_denied', 'ports', 'servers', 'feature',
  ],
  timeouts: ['connect', 'idle', 'queue', 'client_fin'],
  check: [
    'type', 'interval', 'fast_interval', 'down_interval', 'timeout', 'rise', 'fall', 'on_down', 'port', 'ports',
    'send', 'expect', 'require_features', 'command', 'observe',
  ],
  affinity: ['by', 'ttl', 'max_bindings'],
  failback: ['delay', 'slowstart', 'steps', 'step_interval'],
  overflow: ['above'],
  failover: ['delay'],
  server: ['name', 'host', 'address', 'ports', 'weight', 'tier', 'state', 'maint_kill', 'max_connections', 'features'],
  frontend: ['name', 'listen', 'pool', 'port', 'allow', 'max_connections', 'send_proxy'],
} as const;

/** Pool settings before the pool's named ports are known: the check port stays a name to resolve later. */
interface PoolSettings {
  mode: PoolConfig['mode'];
  balance: PoolConfig['balance'];
  retries: number;
  redispatch: boolean;
  timeouts: TimeoutsConfig;
  tcpKeepalive: number;
  check: Omit<CheckConfig, 'port' | 'ports'> & { port?: string; ports: readonly string[] };
  affinity: AffinityConfig;
  failback: FailbackConfig;
  /** null: not written (tcp, unless route / retry_denied imply licd). */
  protocol: PoolConfig['protocol'] | null;
  route: PoolConfig['route'];
  retryDenied: boolean;
  overflow: OverflowConfig | null;
  failover: FailoverConfig;
}

const BUILTIN: PoolSettings = {
  ...DEFAULTS.pool,
  timeouts: { ...DEFAULTS.pool.timeouts },
  check: { ...DEFAULTS.pool.check, ports: [] },
  affinity: { ...DEFAULTS.pool.affinity },
  failback: { ...DEFAULTS.pool.failback },
  protocol: null,
  overflow: DEFAULTS.pool.overflow,
  failover: { ...DEFAULTS.pool.failover },
};

export function loadProxyConfig(file: string = DEFAULT_CONFIG_FILE): ProxyConfig {
  return parseProxyConfig(file, readConfigText(file));
}

export function parseProxyConfig(file: string, text: string): ProxyConfig {
  return buildFromYaml(file, text, (root) => readRoot(root, file));
}

function readRoot(root: Cursor, file: string): ProxyConfig {
  root.map(KEYS.root);
  const global = readGlobal(root.at('global'));
  const stats = readStats(root.at('stats'), file);
  const defaults = readPoolSettings(root.at('defaults'), BUILTIN, KEYS.poolSettings);
  const pools = readPools(root.at('pools'), defaults);
  const frontends = readFrontends(root.at('frontends'), pools);
  const daemons = readDaemons(root.at('daemons'), file);
  const alerts = readAlerts(root.at('alerts'));
  const cluster = readCluster(root.at('cluster'));
  if (global.workers > 1) {
    // Worker processes see the servers' states, not their features: feature routing there would route blind.
    for (const p of pools) {
      if (p.route === 'feature') root.at('pools').at(p.name).at('route').error('route: feature needs global.workers: 1 (worker processes do not see the servers\' features yet)');
    }
  }
  const warnings = featureWarnings(root.at('pools'), pools);
  return { file, global, stats, pools, frontends, daemons, alerts, ...(cluster !== null ? { cluster } : {}), ...(warnings.length > 0 ? { warnings } : {}) };
}

/**
 * A pool `feature` that no server is known to serve (SPEC 8): no server lists it in `features:`, and the checks
 * cannot tell either (a server without `features:` whose lmstat / external check may still report it is given
 * the benefit of the doubt; the pool shows on /stats whether any server serves it once checked).
 */
function featureWarnings(poolsC: Cursor, pools: readonly PoolConfig[]): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const p of pools) {
    const f = p.feature;
    if (f === null || p.servers.some((s) => s.features.includes(f))) continue;
    const checkReads = p.check.type === 'lmstat' || p.check.type === 'external';
    if (checkReads && p.servers.some((s) => s.features.length === 0)) continue;
    const at = poolsC.at(p.name).at('feature');
    const { line, col } = at.pos();
    const why = checkReads ? 'no server lists it in features:' : `no server lists it in features: and check.type ${p.check.type} does not read lmstat`;
    out.push({ file: at.file, line, col, path: at.path, message: `feature "${f}" is served by no server of pool ${p.name} (${why})` });
  }
  return out;
}

function readGlobal(c: Cursor): GlobalConfig {
  c.map(KEYS.global);
  return {
    logLevel: c.at('log_level').oneOf(LOG_LEVELS) ?? DEFAULTS.global.logLevel,
    maxConnections: c.at('max_connections').int(1, 10_000_000) ?? DEFAULTS.global.maxConnections,
    grace: c.at('grace').duration() ?? DEFAULTS.global.grace,
    workers: c.at('workers').int(1, MAX_WORKERS) ?? DEFAULTS.global.workers,
    workerAccept: c.at('worker_accept').oneOf(WORKER_ACCEPT) ?? DEFAULTS.global.workerAccept,
    orphanGrace: readOrphanGrace(c.at('orphan_grace')),
  };
}

/** A timer cannot wait longer than 2^31 ms (24.8 days); a week is past any license job worth keeping. */
const MAX_ORPHAN_GRACE_MS = 7 * 86_400_000;

function readOrphanGrace(c: Cursor): number {
  const ms = c.duration();
  if (ms === undefined) return DEFAULTS.global.orphanGrace;
  if (ms > MAX_ORPHAN_GRACE_MS) {
    c.error(`must be at most 7d, got ${formatDuration(ms)}`);
    return DEFAULTS.global.orphanGrace;
  }
  return ms;
}

function readStats(c: Cursor, file: string): StatsConfig | null {
  if (!c.map(KEYS.stats)) return null;
  const admin = c.at('admin');
  let tokenFile: string | undefined;
  let insecure = false;
  if (admin.map(KEYS.admin)) {
    insecure = admin.at('insecure').bool() ?? false;
    const tf = admin.at('token_file');
    const given = tf.str({ required: true });
    // Relative to the configuration file, as `daemons:` paths are: the file works from any working directory.
    tokenFile = given === undefined ? undefined : resolve(dirname(file), given);
    if (tokenFile !== undefined) {
      const problem = tokenFileProblem(tokenFile);
      if (problem) tf.error(problem);
    }
  }
  const listen = c.at('listen').hostPort({ allowZero: true }) ?? { ...DEFAULTS.stats.listen };
  if (tokenFile !== undefined && !insecure && !isLoopback(listen.host)) {
    (c.at('listen').present ? c.at('listen') : admin).error(
      `the admin API on ${formatHostPort(listen)} (not a loopback address) over plain HTTP would send its bearer token in clear text: ` +
        'listen on 127.0.0.1 (reach it through SSH or a TLS proxy), or set stats.admin.insecure: true on a trusted network',
    );
  }
  return {
    listen,
    refresh: c.at('refresh').duration({ min: 1000 }) ?? DEFAULTS.stats.refresh,
    admin: tokenFile !== undefined ? { tokenFile, insecure } : null,
    history: readHistory(c.at('history'), file),
    events: readEventFile(c.at('events'), file),
  };
}

/** `stats.history` (SPEC 10): where the hourly usage records go and how long they stay. */
function readHistory(c: Cursor, file: string): StatsConfig['history'] {
  if (!c.present || !c.map(KEYS.history)) return null;
  const given = c.at('dir').str({ required: true });
  // At least one closed hour must survive compaction, or the history would always be empty.
  const keep = c.at('keep').duration({ min: 3_600_000 }) ?? DEFAULTS.historyKeep;
  return given === undefined ? null : { dir: resolve(dirname(file), given), keep };
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and `localhost`: traffic that never leaves the host. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^::ffff:/, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * A bearer token file must exist, be readable by us and hidden from other users, and hold a usable token: `run`
 * would otherwise start with an admin API nobody can use (or, whitespace only, silently without one).
 */
function tokenFileProblem(path: string): string | undefined {
  try {
    const st = statSync(path);
    if (!st.isFile()) return `token file "${path}" is not a regular file`;
    if (st.mode & 0o004) return `token file "${path}" is readable by every user: chmod 600 it`;
    if (st.size > MAX_TOKEN_FILE_BYTES) return `token file "${path}" is ${st.size} bytes: a token file holds one token (at most ${MAX_TOKEN_FILE_BYTES} bytes)`;
    const problem = adminTokenProblem(readFileSync(path, 'utf8'));
    if (problem) return `token file "${path}" ${problem}`;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `token file "${path}" does not exist` : `token file "${path}" cannot be read (${code})`;
  }
  return undefined;
}

/** `known`: the keys to check `c` against, or null when the caller already checked them (a pool's own keys). */
function readPoolSettings(c: Cursor, base: PoolSettings, known: readonly string[] | null): PoolSettings {
  if (known) c.map(known);
  const t = c.at('timeouts');
  t.map(KEYS.timeouts);
  const a = c.at('affinity');
  a.map(KEYS.affinity);
  const f = c.at('failback');
  f.map(KEYS.failback);
  const o = c.at('overflow');
  const fo = c.at('failover');
  fo.map(KEYS.failover);
  return {
    mode: c.at('mode').oneOf(MODES) ?? base.mode,
    balance: c.at('balance').oneOf(BALANCES) ?? base.balance,
    retries: c.at('retries').int(0, 100) ?? base.retries,
    redispatch: c.at('redispatch').bool() ?? base.redispatch,
    timeouts: {
      connect: t.at('connect').duration({ min: 1 }) ?? base.timeouts.connect,
      idle: t.at('idle').duration({ min: 1 }) ?? base.timeouts.idle,
      queue: t.at('queue').duration() ?? base.timeouts.queue,
      clientFin: t.at('client_fin').duration({ min: 1 }) ?? base.timeouts.clientFin,
    },
    tcpKeepalive: c.at('tcp_keepalive').duration() ?? base.tcpKeepalive,
    check: readCheck(c.at('check'), base.check),
    affinity: {
      by: a.at('by').oneOf(['source', 'handle', 'none'] as const) ?? base.affinity.by,
      ttl: a.at('ttl').duration() ?? base.affinity.ttl,
      maxBindings: a.at('max_bindings').int(1, 100_000_000) ?? base.affinity.maxBindings,
    },
    failback: {
      delay: f.at('delay').duration() ?? base.failback.delay,
      slowstart: f.at('slowstart').duration() ?? base.failback.slowstart,
      steps: readSteps(f.at('steps')) ?? base.failback.steps,
      stepInterval: f.at('step_interval').duration({ min: 1 }) ?? base.failback.stepInterval,
    },
    protocol: c.at('protocol').oneOf(['tcp', 'licd'] as const) ?? base.protocol,
    route: c.at('route').oneOf(['none', 'feature'] as const) ?? base.route,
    retryDenied: c.at('retry_denied').bool() ?? base.retryDenied,
    overflow: readOverflow(o) ?? base.overflow,
    failover: { delay: fo.at('delay').duration() ?? base.failover.delay },
  };
}

/** `80%` -> 0.8. A bare number is refused: is 0.8 a share or a percentage? */
function readPercent(c: Cursor, min: number): number | undefined {
  if (!c.present) return undefined;
  const raw = isScalar(c.node) ? c.node.value : undefined;
  if (typeof raw === 'number') {
    c.error(`must be a percentage from ${min}% to 100%, e.g. 80%; got ${raw} (is it a share or a percentage?)`);
    return undefined;
  }
  const text = c.str();
  if (text === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*%$/.exec(text.trim());
  const v = m ? Number(m[1]) : NaN;
  if (!(v >= min && v <= 100)) {
    c.error(`must be a percentage from ${min}% to 100%, e.g. 80%; got "${text.slice(0, 40)}"`);
    return undefined;
  }
  return v / 100;
}

function readOverflow(c: Cursor): OverflowConfig | undefined {
  if (!c.map(KEYS.overflow)) return undefined;
  const above = readPercent(c.at('above'), 0);
  if (above === undefined && !c.at('above').present) c.at('above').error('is required, e.g. overflow: { above: 80% }');
  return above === undefined ? undefined : { above };
}

/** `[25%, 50%, 75%, 100%]`: rising shares, the last one 100% (otherwise the old tier would keep clients for ever). */
function readSteps(c: Cursor): number[] | undefined {
  if (!c.present) return undefined;
  const out: number[] = [];
  for (const item of c.items()) {
    const v = readPercent(item, 1);
    if (v === undefined) return undefined;
    if (out.length > 0 && v < out[out.length - 1]!) {
      item.error('steps must not decrease, e.g. [25%, 50%, 75%, 100%]');
      return undefined;
    }
    out.push(v);
  }
  if (out.length > 0 && out[out.length - 1] !== 1) {
    c.error('the last step must be 100%, e.g. [25%, 50%, 75%, 100%]');
    return undefined;
  }
  return out;
}

function readCheck(c: Cursor, base: PoolSettings['check']): PoolSettings['check'] {
  c.map(KEYS.check);
  const expectC = c.at('expect');
  const expect = expectC.str() ?? base.expect;
  if (expectC.present && expect !== null) {
    try {
      new RegExp(expect);
    } catch (err) {
      expectC.error(`not a valid regular expression: ${(err as Error).message}`);
    }
  }
  const commandC = c.at('command');
  const command = commandC.strList() ?? base.command;
  if (commandC.present && command !== null && command.length === 0) commandC.error('must name a program: ["lmutil", "lmstat", "-a", "-c", "{port}@{host}"]');
  return {
    type: c.at('type').oneOf(CHECK_TYPES) ?? base.type,
    interval: c.at('interval').duration({ min: 10 }) ?? base.interval,
    fastInterval: c.at('fast_interval').duration({ min: 10 }) ?? base.fastInterval,
    downInterval: c.at('down_interval').duration({ min: 10 }) ?? base.downInterval,
    timeout: c.at('timeout').duration({ min: 1 }) ?? base.timeout,
    rise: c.at('rise').int(1, 1000) ?? base.rise,
    fall: c.at('fall').int(1, 1000) ?? base.fall,
    onDown: c.at('on_down').oneOf(['keep', 'close'] as const) ?? base.onDown,
    port: c.at('port').str() ?? base.port,
    ports: c.at('ports').strList() ?? base.ports,
    send: c.at('send').str() ?? base.send,
    expect,
    requireFeatures: c.at('require_features').strList() ?? base.requireFeatures,
    command,
    observe: c.at('observe').oneOf(['none', 'response'] as const) ?? base.observe,
  };
}

function readPools(c: Cursor, defaults: PoolSettings): PoolConfig[] {
  if (!c.present) {
    c.error('is required: at least one pool of servers');
    return [];
  }
  const pools: PoolConfig[] = [];
  for (const [name, pc] of c.entries()) {
    if (!NAME.test(name)) pc.error(`pool name "${name}" is not valid: ${NAME_HINT}`);
    if (!pc.map(KEYS.pool)) {
      if (!pc.present) pc.error('is empty: a pool needs servers');
      continue;
    }
    const settings = readPoolSettings(pc, defaults, null);
    const pool = readPool(pc, name, settings);
    if (pool) pools.push(pool);
  }
  if (pools.length === 0 && c.issueCount === 0) c.error('must define at least one pool');
  return pools;
}

function readNamedPorts(c: Cursor): Record<string, number> {
  const ports: Record<string, number> = {};
  for (const [name, pc] of c.entries()) {
    if (!NAME.test(name)) pc.error(`port name "${name}" is not valid: ${NAME_HINT}`);
    const p = pc.int(1, 65535, { required: true });
    if (p !== undefined) ports[name] = p;
  }
  return ports;
}

function readPool(c: Cursor, name: string, s: PoolSettings): PoolConfig | undefined {
  const portsC = c.at('ports');
  const declared = portsC.present ? readNamedPorts(portsC) : undefined;
  if (portsC.present && declared && Object.keys(declared).length === 0 && c.issueCount === 0) {
    portsC.error('must name at least one port, e.g. { license: 31010, tokens: 31011 }');
  }
  const serversC = c.at('servers');
  if (!serversC.present) serversC.error('is required: list the pool\'s servers');
  const serverCursors = serversC.items();
  if (serversC.present && serverCursors.length === 0) serversC.error('must list at least one server');

  // A pool of `address:` servers has one port, named `main` unless the pool names it.
  let poolPorts: Record<string, number> | undefined = declared;
  const servers: ServerConfig[] = [];
  const seen = new Map<string, Cursor>();
  for (const sc of serverCursors) {
    if (!sc.map(KEYS.server)) {
      if (!sc.present) sc.error('is empty: a server needs a name and a host or address');
      continue;
    }
    const sname = sc.at('name').str({ required: true, pattern: NAME, hint: NAME_HINT });
    if (sname !== undefined) {
      if (seen.has(sname)) sc.at('name').error(`duplicate server name "${sname}" in pool ${name} (first at line ${seen.get(sname)!.pos().line})`);
      else seen.set(sname, sc.at('name'));
    }
    const hostC = sc.at('host');
    const addrC = sc.at('address');
    let host: string | undefined;
    let ports: Record<string, number> = {};
    if (hostC.present && addrC.present) {
      addrC.error('write either host (with the pool\'s named ports) or address (host:port), not both');
    } else if (addrC.present) {
      const a = addrC.hostPort({ required: true });
      if (a) {
        host = a.host;
        if (!poolPorts) poolPorts = { main: a.port };
        const names = Object.keys(poolPorts);
        if (names.length !== 1) {
          addrC.error(`address: fits a single-port pool; this pool has ports ${names.join(', ')}: write host: and ports: instead`);
        } else {
          ports = { [names[0]!]: a.port };
        }
      }
    } else if (hostC.present) {
      host = hostC.str({ pattern: /^[A-Za-z0-9.:_-]+$/, hint: 'an IP address or host name' });
      if (!declared) c.at('ports').error('is required when servers are written with host: (name the ports, e.g. { license: 31010 }), or write servers as address: host:port');
    } else {
      sc.error('needs host: (with the pool\'s named ports) or address: host:port');
    }
    const overrides = sc.at('ports');
    if (overrides.present) {
      for (const [pname, pc] of overrides.entries()) {
        const p = pc.int(1, 65535, { required: true });
        if (declared && !(pname in declared)) {
          const near = nearest(pname, Object.keys(declared));
          pc.error(`unknown port name "${pname}"${near ? `; did you mean "${near}"?` : ''} (pool ${name} ports: ${Object.keys(declared).join(', ')})`);
        } else if (p !== undefined) {
          ports[pname] = p;
        }
      }
    }
    if (sname === undefined || host === undefined) continue;
    servers.push({
      name: sname,
      host,
      ports: { ...(declared ?? {}), ...ports },
      weight: sc.at('weight').int(0, 256) ?? DEFAULTS.server.weight,
      tier: sc.at('tier').int(0, 1000) ?? DEFAULTS.server.tier,
      state: sc.at('state').oneOf(ADMIN_STATES) ?? DEFAULTS.server.state,
      maintKill: sc.at('maint_kill').bool() ?? DEFAULTS.server.maintKill,
      maxConnections: sc.at('max_connections').int(0, 10_000_000) ?? DEFAULTS.server.maxConnections,
      features: sc.at('features').strList() ?? DEFAULTS.server.features,
    });
  }
  const portNames = Object.keys(poolPorts ?? {});
  const checkC = c.at('check');
  const check = resolveCheck(checkC, s, portNames, name);
  if (s.mode === 'master' && check.type !== 'lmstat' && check.type !== 'external') {
    (c.at('mode').present ? c.at('mode') : c).error(
      `mode master needs a check that reads lmstat output (check.type: lmstat or external), got check.type ${check.type}`,
    );
  }
  if (check.type === 'send_expect') {
    if (check.send === null) checkC.at('send').error('is required for check.type send_expect, e.g. send: "STATUS\\n"');
    if (check.expect === null) checkC.at('expect').error('is required for check.type send_expect, e.g. expect: "UP"');
  }
  if (check.type === 'external' && check.command === null) {
    checkC.at('command').error('is required for check.type external, e.g. ["lmutil", "lmstat", "-a", "-c", "{port}@{host}"]');
  }
  const protocol = s.protocol ?? (s.route === 'feature' || s.retryDenied ? 'licd' : 'tcp');
  if (protocol === 'tcp' && (s.route === 'feature' || s.retryDenied)) {
    const what = s.route === 'feature' ? 'route: feature' : 'retry_denied: true';
    (c.at('protocol').present ? c.at('protocol') : c).error(`${what} reads the licd protocol: write protocol: licd (or leave protocol out)`);
  }
  const feature = c.at('feature').str({ pattern: /^[^\s]{1,200}$/, hint: 'a feature name as the license server writes it' }) ?? null;
  if (portNames.length === 0) return undefined;
  return {
    name,
    mode: s.mode,
    balance: s.balance,
    retries: s.retries,
    redispatch: s.redispatch,
    timeouts: s.timeouts,
    tcpKeepalive: s.tcpKeepalive,
    ports: poolPorts!,
    affinity: s.affinity,
    check,
    failback: s.failback,
    protocol,
    route: s.route,
    retryDenied: s.retryDenied,
    feature,
    overflow: s.overflow,
    failover: s.failover,
    servers,
  };
}

/** Resolves the check's named ports against the pool's, defaulting to the pool's first port. */
function resolveCheck(c: Cursor, s: PoolSettings, portNames: string[], pool: string): CheckConfig {
  const known = (n: string, where: Cursor): boolean => {
    if (portNames.includes(n)) return true;
    if (portNames.length) {
      const near = nearest(n, portNames);
      where.error(`unknown port name "${n}"${near ? `; did you mean "${near}"?` : ''} (pool ${pool} ports: ${portNames.join(', ')})`);
    }
    return false;
  };
  let port = s.check.port;
  if (port !== undefined && !known(port, c.at('port').present ? c.at('port') : c)) port = undefined;
  const ports = s.check.ports.filter((p, i) => known(p, c.at('ports').present ? c.at('ports').at(String(i)) : c));
  return { ...s.check, port: port ?? portNames[0] ?? 'main', ports };
}

function readFrontends(c: Cursor, pools: PoolConfig[]): FrontendConfig[] {
  const out: FrontendConfig[] = [];
  const names = new Map<string, number>();
  const listens: Array<{ at: HostPort; line: number; name: string }> = [];
  const poolNames = pools.map((p) => p.name);
  for (const fc of c.items()) {
    if (!fc.map(KEYS.frontend)) continue;
    const name = fc.at('name').str({ required: true, pattern: NAME, hint: NAME_HINT });
    if (name !== undefined) {
      if (names.has(name)) fc.at('name').error(`duplicate frontend name "${name}" (first at line ${names.get(name)})`);
      else names.set(name, fc.at('name').pos().line);
    }
    const listenC = fc.at('listen');
    let listen = listenC.hostPort({ required: true, allowZero: true });
    if (listen && listen.port === 0) {
      // Port 0 listens wherever the kernel picks, a port no license client is configured to reach.
      listenC.error(`port 0 is not an address clients can be told: name the port (1..65535), e.g. ${formatHostPort({ host: listen.host, port: 31010 })}`);
      listen = undefined;
    }
    if (listen) {
      const clash = listens.find((l) => l.at.port === listen.port && hostsOverlap(l.at.host, listen.host));
      if (clash) listenC.error(`${formatHostPort(listen)} is already the listen address of frontend ${clash.name} (line ${clash.line})`);
      listens.push({ at: listen, line: listenC.pos().line, name: name ?? '?' });
    }
    const poolC = fc.at('pool');
    const poolName = poolC.str({ required: true });
    const pool = pools.find((p) => p.name === poolName);
    if (poolName !== undefined && !pool && poolNames.length) {
      const near = nearest(poolName, poolNames);
      poolC.error(`unknown pool "${poolName}"${near ? `; did you mean "${near}"?` : ''} (pools: ${poolNames.join(', ')})`);
    }
    const portC = fc.at('port');
    let port = portC.str();
    if (pool) {
      const portNames = Object.keys(pool.ports);
      if (port === undefined) {
        if (portNames.length === 1) port = portNames[0];
        else fc.error(`port: is required: pool ${pool.name} has several ports (${portNames.join(', ')}); name the one this frontend forwards to`);
      } else if (!portNames.includes(port)) {
        const near = nearest(port, portNames);
        portC.error(`unknown port name "${port}"${near ? `; did you mean "${near}"?` : ''} (pool ${pool.name} ports: ${portNames.join(', ')})`);
        port = undefined;
      }
    }
    const allow = fc.at('allow').cidrList() ?? null;
    const maxConnections = fc.at('max_connections').int(0, 10_000_000) ?? DEFAULTS.frontend.maxConnections;
    const sendProxy = fc.at('send_proxy').oneOf(['v1', 'v2'] as const) ?? null;
    if (name === undefined || !listen || !pool || port === undefined) continue;
    out.push({ name, listen, pool: pool.name, port, allow, maxConnections, sendProxy });
  }
  if (!c.present) c.error('is required: at least one frontend (listen address -> pool)');
  return out;
}

function hostsOverlap(a: string, b: string): boolean {
  const any = (h: string) => h === '0.0.0.0' || h === '::';
  return a === b || any(a) || any(b);
}

function readDaemons(c: Cursor, file: string): string[] {
  const out: string[] = [];
  for (const item of c.items()) {
    const p = item.str({ required: true });
    if (p === undefined) continue;
    // Relative to the configuration file's folder first (where an operator keeps them), then to the working
    // directory (SPEC's example names conf/licd/... from the repository root).
    const candidates = [resolve(dirname(file), p), resolve(p)];
    const found = candidates.find((f) => {
      try {
        return statSync(f).isFile();
      } catch {
        return false;
      }
    });
    if (found) out.push(found);
    else item.error(`licd configuration file "${p}" does not exist (looked in ${[...new Set(candidates)].join(' and ')})`);
  }
  return out;
}
