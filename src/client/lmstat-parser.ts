/**
 * The one parser for lmstat -a style text: licd's STATUS answer (SPEC 4.2) and real FlexNet `lmutil lmstat -a`
 * output. It is lenient on purpose: license servers of many vendors and versions print slightly different text,
 * and a health check must never crash on one of them, so unknown lines are skipped and nothing ever throws.
 */

export interface LmstatServer {
  host: string;
  /** From the `License server status: port@host,...` line, when the host is listed there. */
  port?: number;
  up: boolean;
  master: boolean;
  version?: string;
  /** Why the server is not UP, as printed (`Cannot connect to license server system. (-15,570:115 ...)`). */
  error?: string;
}

export interface LmstatVendor {
  name: string;
  up: boolean;
  version?: string;
  /** The `(on host)` of the `Vendor daemon status` heading this daemon was listed under. */
  on?: string;
  error?: string;
}

export interface LmstatUser {
  user: string;
  host: string;
  display: string;
  version: string;
  /** The license server host that issued the license, and its port. */
  server: string;
  port: number;
  /** FlexNet prints a number; licd prints its session handle (`primary.1a`). */
  handle: string;
  /** As printed (`Fri 10/20 16:44`), without a year: lmstat does not print one. */
  start?: string;
  count: number;
  /** A `queued for N licenses` line: the user waits, it holds nothing. */
  queued?: boolean;
  linger?: { remaining: number; total: number };
}

export interface LmstatReservation {
  count: number;
  /** `HOST`, `GROUP`, `HOST_GROUP`, `USER`, `DISPLAY`, `INTERNET`, `PROJECT`, ... as printed. */
  type: string;
  target: string;
  server?: string;
  port?: number;
}

export interface LmstatFeature {
  /** The name of the `Users of <name>:` heading. */
  name: string;
  issued: number;
  inUse: number;
  /** `(Uncounted, node-locked)`: no issued count; `inUse` is then the sum of the listed users. */
  uncounted?: boolean;
  /** `Users of X:  (Error: ...)` or `(Error getting status: ...)`: the server could not tell. */
  error?: string;
  /** From the `"name" v61.9, vendor: VENDOR1, expiry: 31-dec-2027` line. */
  version?: string;
  vendor?: string;
  expiry?: string;
  /** `floating`, `nodelocked`, `uncounted nodelocked`, ... from the `... license` line. */
  type?: string;
  users: LmstatUser[];
  reservations: LmstatReservation[];
}

/** licd extras for redundant sets (SPEC 4.3): read leniently from a `Redundancy: triad, paired and synced` line. */
export interface LmstatRedundancy {
  mode?: string;
  /** `paired and synced`, `peer not available`, `not synced`, `recovering`, or the text as printed. */
  state: string;
  raw: string;
}

/** One peer as a licd member sees it (`Redundancy peer: b connected following synced`). */
export interface LmstatRedundancyPeer {
  name: string;
  connected: boolean;
  /** Its licd role (waiting, candidate, recovering, following, serving) while connected. */
  role?: string;
  /** Only from the serving member: the peer has every replicated change. */
  synced?: boolean;
}

/** licd's own role and its peers (`Redundancy role:` / `Redundancy peer:` lines, PROTOCOL.md "Status"). */
export interface LmstatRedundancyDetail {
  role: string;
  /** The serving member as this one knows it; null: none. */
  master: string | null;
  peers: LmstatRedundancyPeer[];
}

export interface LmstatStatus {
  servers: LmstatServer[];
  vendors: LmstatVendor[];
  features: LmstatFeature[];
  /** Host of the server that reports `(MASTER)`, if any. */
  master?: string;
  /** True when at least one server line reads `license server UP`. */
  up: boolean;
  redundancy?: LmstatRedundancy;
  redundancyDetail?: LmstatRedundancyDetail;
  /** Lines that report a failure outside a feature (`Error getting status: ...`, `lmgrd is not running: ...`). */
  errors: string[];
}

type Section = 'none' | 'servers' | 'vendors' | 'features';

const SERVER_LIST = /^\s*License server status:\s*(.*)$/i;
const SERVER_LINE = /^\s*(\S+): license server (UP|DOWN)\b(\s*\(MASTER\))?(?:\s+(v\S+))?/i;
const SERVER_CANNOT = /^\s*(\S+): (Cannot connect to license server.*)$/i;
const VENDOR_HEADING = /^\s*Vendor daemon status(?: \(on ([^)]+)\))?:?\s*$/i;
const VENDOR_LINE = /^\s*([\w.-]+): (UP|DOWN)\b(?:\s+(v\S+))?/i;
const VENDOR_ERROR = /^\s*([\w.-]+): (The desired vendor daemon is down.*|.*daemon.*down.*)$/i;
const FEATURE_HEADING = /^\s*Users of (.+?):\s+\((.*)\)\s*$/;
const TOTALS = /Total of (\d+) licen[sc]es? issued;\s*Total of (\d+) licen[sc]es? in use/i;
const FEATURE_INFO = /^\s*"([^"]*)"\s+v([^,\s]*)/;
const INFO_VENDOR = /vendor:\s*([^,\s]+)/i;
const INFO_EXPIRY = /expiry:\s*([^,]+)/i;
const LICENSE_TYPE = /^\s*((?:uncounted\s+)?(?:floating|nodelocked|node-locked|counted|uncounted)[\w -]*?) license\b/i;
const RESERVATION = /^\s*(\d+) RESERVATIONs? for (\S+)\s+(\S+)(?:\s+\(([^/()\s]+)\/(\d+)\))?/i;
const USER_LINE = /^\s+(.+?) \(v([^)]*)\) \(([^/()\s]+)\/(\d+)(?:\s+([^)]*))?\)(.*)$/;
const START = /,\s*start (\w+ \d+\/\d+ \d+:\d+)(?:,\s*(\d+) licen[sc]es?)?/i;
const QUEUED = /queued for (\d+) licen[sc]es?/i;
const LINGER = /\(linger:\s*(\d+)\s*\/\s*(\d+)\)/i;
const REDUNDANCY = /^\s*(?:Redundancy|Redundancy status|Pair status|Triad status|Pair|Triad)\s*:\s*(.*)$/i;
const REDUNDANCY_ROLE = /^Redundancy role: ([a-z]+), master (\S+)$/;
const REDUNDANCY_PEER = /^Redundancy peer: (\S+) (connected|missing)(?: ([a-z]+))?(?: (synced|unsynced))?$/;
/** Peers listed at most (a member has two in a triad; the rest of a hostile answer is ignored). */
const MAX_REDUNDANCY_PEERS = 8;
const REDUNDANCY_STATES = ['paired and synced', 'peer not available', 'not synced', 'recovering'];
const REDUNDANCY_MODES = /\b(triad|backup|pair|hal)\b/i;
const BARE_VERSION = /^\d+(?:\.\d+)*$/;

/** Parses lmstat -a style text. Never throws; text that is not lmstat output gives empty lists. */
export function parseLmstat(text: string): LmstatStatus {
  const status: LmstatStatus = { servers: [], vendors: [], features: [], up: false, errors: [] };
  try {
    parseInto(String(text ?? ''), status);
  } catch {
    // Defensive: a regex or a number conversion surprise must not turn a status into a crash.
  }
  finish(status);
  return status;
}

function parseInto(text: string, s: LmstatStatus): void {
  const ports = new Map<string, number>();
  let section: Section = 'none';
  let vendorsOn: string | undefined;
  let feature: LmstatFeature | undefined;

  for (const rawLine of text.split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line.trim() === '' || line.trim() === 'END') continue;
    let m: RegExpExecArray | null;

    if ((m = SERVER_LIST.exec(line))) {
      section = 'servers';
      feature = undefined;
      for (const entry of m[1]!.split(/[,\s]+/)) {
        const pm = /^(\d+)@(.+)$/.exec(entry.trim());
        if (!pm) continue;
        const host = pm[2]!;
        ports.set(host.toLowerCase(), Number(pm[1]));
        if (!findServer(s, host)) s.servers.push({ host, port: Number(pm[1]), up: false, master: false });
      }
      continue;
    }
    if ((m = FEATURE_HEADING.exec(line))) {
      section = 'features';
      feature = featureFromHeading(m[1]!, m[2]!);
      s.features.push(feature);
      continue;
    }
    if ((m = VENDOR_HEADING.exec(line))) {
      section = 'vendors';
      vendorsOn = m[1]?.trim();
      feature = undefined;
      continue;
    }
    if (/^\s*Feature usage info:?\s*$/i.test(line)) {
      section = 'features';
      feature = undefined;
      continue;
    }
    // licd's detail lines first: a role word (`recovering`) must not read as the pair state below.
    if ((m = REDUNDANCY_ROLE.exec(line))) {
      s.redundancyDetail = { role: m[1]!, master: m[2] === 'none' ? null : m[2]!, peers: s.redundancyDetail?.peers ?? [] };
      continue;
    }
    if ((m = REDUNDANCY_PEER.exec(line))) {
      const d = (s.redundancyDetail ??= { role: 'unknown', master: null, peers: [] });
      if (d.peers.length < MAX_REDUNDANCY_PEERS) {
        d.peers.push({
          name: m[1]!,
          connected: m[2] === 'connected',
          ...(m[3] !== undefined ? { role: m[3] } : {}),
          ...(m[4] !== undefined ? { synced: m[4] === 'synced' } : {}),
        });
      }
      continue;
    }
    if ((m = REDUNDANCY.exec(line)) || REDUNDANCY_STATES.some((st) => line.toLowerCase().includes(st))) {
      // Only outside a feature's user list, where a user or display name could contain these words.
      if (!feature || !/^\s/.test(line)) {
        s.redundancy = redundancyFrom(m ? m[1]! : line.trim(), line.trim());
        continue;
      }
    }
    if ((m = SERVER_LINE.exec(line))) {
      const host = m[1]!;
      const entry = serverEntry(s, host, ports);
      entry.up = m[2]!.toUpperCase() === 'UP';
      entry.master = Boolean(m[3]);
      if (m[4]) entry.version = m[4];
      continue;
    }
    if ((m = SERVER_CANNOT.exec(line)) && section !== 'features') {
      const entry = serverEntry(s, m[1]!, ports);
      entry.up = false;
      entry.master = false;
      entry.error = m[2]!.trim();
      continue;
    }
    if (/^\s*(Error getting status|lmgrd is not running)\b/i.test(line)) {
      s.errors.push(line.trim());
      continue;
    }

    if (section === 'vendors') {
      if ((m = VENDOR_LINE.exec(line))) {
        s.vendors.push({ name: m[1]!, up: m[2]!.toUpperCase() === 'UP', ...(m[3] ? { version: m[3] } : {}), ...(vendorsOn ? { on: vendorsOn } : {}) });
      } else if ((m = VENDOR_ERROR.exec(line))) {
        s.vendors.push({ name: m[1]!, up: false, error: m[2]!.trim(), ...(vendorsOn ? { on: vendorsOn } : {}) });
      }
      continue;
    }

    if (section === 'features' && feature) {
      if ((m = RESERVATION.exec(line))) {
        const r: LmstatReservation = { count: Number(m[1]), type: m[2]!.toUpperCase(), target: m[3]! };
        if (m[4]) r.server = m[4];
        if (m[5]) r.port = Number(m[5]);
        feature.reservations.push(r);
        continue;
      }
      if ((m = FEATURE_INFO.exec(line))) {
        feature.version = m[2]!;
        const vendor = INFO_VENDOR.exec(line)?.[1];
        if (vendor) feature.vendor = vendor;
        const expiry = INFO_EXPIRY.exec(line)?.[1]?.trim();
        if (expiry) feature.expiry = expiry;
        continue;
      }
      if ((m = USER_LINE.exec(line))) {
        const u = userFrom(m);
        if (u) feature.users.push(u);
        continue;
      }
      if ((m = LICENSE_TYPE.exec(line))) {
        feature.type = m[1]!.trim().toLowerCase();
        continue;
      }
    }
    // Anything else (copyright banner, license file paths, vendor_string lines, ...) carries nothing we use.
  }
}

function featureFromHeading(name: string, inner: string): LmstatFeature {
  const f: LmstatFeature = { name: name.trim(), issued: 0, inUse: 0, users: [], reservations: [] };
  const totals = TOTALS.exec(inner);
  if (totals) {
    f.issued = Number(totals[1]);
    f.inUse = Number(totals[2]);
  } else if (/uncounted/i.test(inner)) {
    f.uncounted = true;
  } else if (/error/i.test(inner)) {
    f.error = inner.trim();
  }
  return f;
}

/**
 * The part before `(v<version>)` is `user host display`, but users may contain spaces (`Jane Doe Jr. jane tty`)
 * and some lines leave the display out: the last two words are host and display, the rest is the user.
 */
function userFrom(m: RegExpExecArray): LmstatUser | undefined {
  const rest = m[6] ?? '';
  const queued = QUEUED.exec(rest);
  const words = m[1]!.trim().split(/\s+/);
  // Queued lines repeat the requested version as a bare word before `(v...)`.
  if (queued && words.length > 3 && BARE_VERSION.test(words[words.length - 1]!)) words.pop();
  let user: string;
  let host: string;
  let display: string;
  if (words.length >= 3) {
    display = words.pop()!;
    host = words.pop()!;
    user = words.join(' ');
  } else if (words.length === 2) {
    [user, host] = words as [string, string];
    display = '';
  } else {
    user = words[0] ?? '';
    host = '';
    display = '';
  }
  const u: LmstatUser = {
    user,
    host,
    display,
    version: m[2]!,
    server: m[3]!,
    port: Number(m[4]),
    handle: (m[5] ?? '').trim(),
    count: 1,
  };
  const start = START.exec(rest);
  if (start) {
    u.start = start[1]!;
    if (start[2]) u.count = Number(start[2]);
  }
  if (queued) {
    u.queued = true;
    u.count = Number(queued[1]);
  }
  const linger = LINGER.exec(rest);
  if (linger) u.linger = { remaining: Number(linger[1]), total: Number(linger[2]) };
  if (!start && !queued) return undefined;
  return u;
}

function redundancyFrom(text: string, raw: string): LmstatRedundancy {
  const lower = text.toLowerCase();
  const state = REDUNDANCY_STATES.find((st) => lower.includes(st)) ?? text.replace(/^[^,]*,\s*/, '').trim();
  const mode = REDUNDANCY_MODES.exec(text)?.[1]?.toLowerCase();
  return { ...(mode ? { mode } : {}), state, raw };
}

function findServer(s: LmstatStatus, host: string): LmstatServer | undefined {
  // Hosts are matched exactly first: Windows output lists `BVS15004` and `bvs15004` as two members.
  return s.servers.find((x) => x.host === host);
}

function serverEntry(s: LmstatStatus, host: string, ports: Map<string, number>): LmstatServer {
  let entry = findServer(s, host);
  if (!entry) {
    const port = ports.get(host.toLowerCase());
    entry = { host, ...(port !== undefined ? { port } : {}), up: false, master: false };
    s.servers.push(entry);
  }
  return entry;
}

function finish(s: LmstatStatus): void {
  s.up = s.servers.some((x) => x.up);
  const master = s.servers.find((x) => x.master && x.up);
  if (master) s.master = master.host;
  for (const f of s.features) {
    if (f.uncounted) f.inUse = f.users.reduce((n, u) => n + (u.queued ? 0 : u.count), 0);
  }
}

/** The first feature of that name (lmstat may list a feature twice, once per license line). */
export function findFeature(status: LmstatStatus, name: string): LmstatFeature | undefined {
  return status.features.find((f) => f.name === name);
}

/**
 * Whether a command's stdout looks like lmstat -a output (decides if an `external` check's output is parsed).
 * Deliberately cheap: looks for the headings every lmstat variant prints.
 */
export function isLmstatOutput(text: string): boolean {
  if (typeof text !== 'string' || text.length === 0) return false;
  return (
    /^\s*License server status:/im.test(text) ||
    /^\s*\S+: license server (UP|DOWN)\b/im.test(text) ||
    /^\s*Users of .+:\s+\((Total of \d+|Uncounted|Error)/im.test(text)
  );
}
