/**
 * The validated, frozen shape of a licd license file (SPEC 4). Durations are milliseconds. Every default is in
 * LICD_DEFAULTS below.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { isScalar } from 'yaml';
import type { HostPort } from '../common/address.ts';
import { isHost } from '../common/address.ts';
import { buildFromYaml, loadYamlFile } from './yaml-file.ts';
import type { Cursor } from './cursor.ts';

export type FeatureKind = 'seats' | 'tokens';
export type RedundancyMode = 'backup' | 'triad';

export interface LicdPortsConfig {
  /** 0: a free port the system picks at start (tests, demos); the bound port is in the `listening` log line. */
  license: number;
  /** The token port (LSTC's parallel-token port); null when not written: an LM-X / RLM shaped server has one port. */
  tokens: number | null;
  /** Replication port of a redundant set (4.3); null when not written. */
  peer: number | null;
}

export interface LicdServerConfig {
  /** `[A-Za-z0-9_-]+`: handles are `<name>.<hex id>`, so a dot would make them ambiguous. */
  name: string;
  host: string;
  ports: LicdPortsConfig;
  /** Client CIDRs; null = every client allowed. */
  allow: readonly string[] | null;
  proxyProtocol: boolean;
  heartbeatTimeout: number;
}

export interface LicdFeatureConfig {
  name: string;
  /** Dotted numeric version; a checkout may ask for this version or an older one. */
  version: string;
  count: number;
  /** `YYYY-MM-DD` as written, or null for a permanent feature. */
  expires: string | null;
  /** First millisecond (local time) at which the feature is expired: midnight after the `expires` day. */
  expiresAt: number | null;
  kind: FeatureKind;
}

export interface LicdRedundancyConfig {
  mode: RedundancyMode;
  peers: readonly HostPort[];
  order: number;
  /** Resolved against the license file's folder. */
  secretFile: string | null;
  /** The shared secret read from `secret_file` (trimmed); null without one. */
  secret: string | null;
  /** Peer heartbeat interval (ms); a peer silent for 3 of them is lost. */
  heartbeat: number;
  /**
   * How long a new master keeps a replicated session that nobody RESUMEs (ms). Separate from heartbeat_timeout:
   * a held client resumes within seconds, and a session whose client is gone must not hold a seat for minutes.
   */
  resumeWindow: number;
  /**
   * How long a license connection that ends without QUIT (FIN, RST, error: e.g. the balancer it came through was
   * killed) leaves its sessions detached for a RESUME on another connection, on the serving member (ms). 0: they
   * are freed at once, as on a standalone daemon.
   */
  holdOnDisconnect: number;
}

export interface LicdConfig {
  /** The file it was read from, for reloads and messages. */
  file: string;
  server: LicdServerConfig;
  features: readonly LicdFeatureConfig[];
  /** Backup pair or triad (SPEC 4.3, src/licd/PROTOCOL.md); null for a standalone daemon. */
  redundancy: LicdRedundancyConfig | null;
}

/** Every default of the licd file, in one place. */
export const LICD_DEFAULTS = {
  server: { host: '127.0.0.1', allow: null, proxyProtocol: false, heartbeatTimeout: 600_000 },
  feature: { version: '1.0', kind: 'seats' },
  redundancy: { order: 0, heartbeat: 1_000, resumeWindow: 30_000, holdOnDisconnect: 0 },
} as const;

const NAME = /^[A-Za-z0-9_-]+$/;
const FEATURE_NAME = /^[A-Za-z0-9_.+-]+$/;
const VERSION = /^\d+(\.\d+)*$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Reads and validates a licd file; throws ConfigError with every issue, or LpxError when unreadable. */
export function loadLicdConfig(file: string): LicdConfig {
  return loadYamlFile(file, (root) => buildLicdConfig(root, file));
}

/** Validates licd YAML text (tests, embedded defaults); `file` names it in messages. */
export function parseLicdConfig(text: string, file = 'licd.yaml'): LicdConfig {
  return buildFromYaml(file, text, (root) => buildLicdConfig(root, file));
}

function buildLicdConfig(root: Cursor, file: string): LicdConfig {
  root.map(['server', 'features', 'redundancy']);
  return {
    file,
    server: buildServer(root.at('server')),
    features: buildFeatures(root.at('features')),
    redundancy: buildRedundancy(root.at('redundancy'), file),
  };
}

function buildServer(c: Cursor): LicdServerConfig {
  if (!c.present) c.error('is required');
  c.map(['name', 'host', 'ports', 'allow', 'proxy_protocol', 'heartbeat_timeout']);
  const name = c.at('name').str({ required: c.present, pattern: NAME, hint: 'letters, digits, "_" and "-" only (handles are <name>.<id>)' });
  const hostC = c.at('host');
  let host = hostC.str() ?? LICD_DEFAULTS.server.host;
  if (hostC.present && !isHost(host)) {
    hostC.error(`"${host}" is neither an IP address nor a host name`);
    host = LICD_DEFAULTS.server.host;
  }
  const p = c.at('ports');
  if (c.present && !p.present) p.error('is required');
  p.map(['license', 'tokens', 'peer']);
  const ports: LicdPortsConfig = {
    license: p.at('license').int(0, 65535, { required: p.present }) ?? 0,
    tokens: p.at('tokens').int(0, 65535) ?? null,
    peer: p.at('peer').int(0, 65535) ?? null,
  };
  return {
    name: name ?? 'licd',
    host,
    ports,
    allow: c.at('allow').cidrList() ?? LICD_DEFAULTS.server.allow,
    proxyProtocol: c.at('proxy_protocol').bool() ?? LICD_DEFAULTS.server.proxyProtocol,
    heartbeatTimeout: c.at('heartbeat_timeout').duration({ min: 10 }) ?? LICD_DEFAULTS.server.heartbeatTimeout,
  };
}

function buildFeatures(c: Cursor): LicdFeatureConfig[] {
  if (!c.present) c.error('is required: a list of { name, count } entries');
  const out: LicdFeatureConfig[] = [];
  const seen = new Map<string, number>();
  for (const f of c.items()) {
    if (!f.map(['name', 'version', 'count', 'expires', 'kind'])) {
      if (!f.present) f.error('expected a mapping such as { name: LS-DYNA, count: 10 }');
      continue;
    }
    const nameC = f.at('name');
    const name = nameC.str({ required: true, pattern: FEATURE_NAME, hint: 'letters, digits and "_.+-" only' });
    if (name !== undefined) {
      const first = seen.get(name);
      if (first !== undefined) nameC.error(`duplicate feature name "${name}" (first defined at line ${first})`);
      else seen.set(name, nameC.pos().line);
    }
    const count = f.at('count').int(0, Infinity, { required: true });
    const version = readVersion(f.at('version'));
    const expires = readDate(f.at('expires'));
    const kind = f.at('kind').oneOf(['seats', 'tokens'] as const) ?? LICD_DEFAULTS.feature.kind;
    if (name === undefined || count === undefined) continue;
    out.push({
      name,
      version: version ?? LICD_DEFAULTS.feature.version,
      count,
      expires: expires?.text ?? null,
      expiresAt: expires?.at ?? null,
      kind,
    });
  }
  return out;
}

function readVersion(c: Cursor): string | undefined {
  if (!c.present) return undefined;
  if (c.node && isScalar(c.node) && typeof c.node.value === 'number') {
    // YAML reads 2025.10 as the number 2025.1; only a quoted string keeps what the operator wrote.
    c.error(`write the version in quotes ("${String(c.node.value)}"): YAML reads an unquoted 2025.10 as 2025.1`);
    return undefined;
  }
  return c.str({ pattern: VERSION, hint: 'expected a dotted number such as "2025.1"' });
}

function readDate(c: Cursor): { text: string; at: number } | undefined {
  if (!c.present) return undefined;
  const v = c.node && isScalar(c.node) ? c.node.value : undefined;
  const text = v instanceof Date ? v.toISOString().slice(0, 10) : typeof v === 'string' ? v : undefined;
  const m = text ? DATE.exec(text) : null;
  if (!text || !m) {
    c.error(`expected a date YYYY-MM-DD such as 2027-12-31, got ${text ? `"${text}"` : 'something else'}`);
    return undefined;
  }
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  const day = new Date(y, mo - 1, d);
  if (day.getFullYear() !== y || day.getMonth() !== mo - 1 || day.getDate() !== d) {
    c.error(`"${text}" is not a calendar date`);
    return undefined;
  }
  // A license is valid through its expiry day, as FlexNet's: it expires at the following midnight.
  return { text, at: new Date(y, mo - 1, d + 1).getTime() };
}

function buildRedundancy(c: Cursor, file: string): LicdRedundancyConfig | null {
  if (!c.map(['mode', 'peers', 'order', 'secret_file', 'heartbeat', 'resume_window', 'hold_on_disconnect'])) return null;
  const mode = c.at('mode').oneOf(['backup', 'triad'] as const);
  if (!c.at('mode').present) c.at('mode').error('is required: backup | triad');
  const peersC = c.at('peers');
  if (!peersC.present) peersC.error('is required: the other members as host:port');
  const before = c.issueCount;
  const peers: HostPort[] = [];
  for (const item of peersC.items()) {
    const hp = item.hostPort({ required: true });
    if (hp) peers.push(hp);
  }
  const want = mode === 'backup' ? 1 : mode === 'triad' ? 2 : undefined;
  if (want !== undefined && peersC.present && c.issueCount === before && peers.length !== want) {
    peersC.error(`${mode} needs exactly ${want} peer${want === 1 ? '' : 's'}, got ${peers.length}`);
  }
  const order = c.at('order').int(0, mode === 'backup' ? 1 : 2) ?? LICD_DEFAULTS.redundancy.order;
  const heartbeat = c.at('heartbeat').duration({ min: 10 }) ?? LICD_DEFAULTS.redundancy.heartbeat;
  // At least 100ms: a client needs a reconnect and a RESUME to get its session back.
  const resumeWindow = c.at('resume_window').duration({ min: 100 }) ?? LICD_DEFAULTS.redundancy.resumeWindow;
  const holdOnDisconnect = c.at('hold_on_disconnect').duration({ min: 0 }) ?? LICD_DEFAULTS.redundancy.holdOnDisconnect;
  const secretC = c.at('secret_file');
  const secretName = secretC.str();
  const secretFile = secretName === undefined ? null : resolve(dirname(file), secretName);
  let secret: string | null = null;
  if (secretFile !== null) {
    try {
      secret = readFileSync(secretFile, 'utf8').trim();
      if (secret.length < 16) secretC.error(`the secret in ${secretFile} is too short: at least 16 characters`);
    } catch (err) {
      secretC.error(`cannot read ${secretFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  } else if (c.issueCount === before && peers.some((p) => !isLoopback(p.host))) {
    // Without a secret only the source address vouches for a peer, and off loopback an address is easy to borrow.
    secretC.error('is required when a peer is not on loopback (a file holding a shared secret of 16+ characters)');
  }
  return { mode: mode ?? 'backup', peers, order, secretFile, secret, heartbeat, resumeWindow, holdOnDisconnect };
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}
