/**
 * `/stats.csv`: HAProxy's `show stat` CSV (doc/management.txt 9.1), so scripts and exporters written for HAProxy
 * read it unchanged. The first 100 columns are HAProxy's, in HAProxy's order, under HAProxy's names; licproxy's own
 * columns follow them. Rows: one FRONTEND row per frontend, then per pool one row per server and a BACKEND row.
 * Fields are quoted per RFC 4180 where needed (names from the configuration may hold anything).
 */
import type { FrontendStats, PoolStats, ServerStats, StatsSnapshot } from './snapshot.ts';
import { upCounts } from './status.ts';

export const HAPROXY_COLUMNS = [
  'pxname', 'svname', 'qcur', 'qmax', 'scur', 'smax', 'slim', 'stot', 'bin', 'bout',
  'dreq', 'dresp', 'ereq', 'econ', 'eresp', 'wretr', 'wredis', 'status', 'weight', 'act',
  'bck', 'chkfail', 'chkdown', 'lastchg', 'downtime', 'qlimit', 'pid', 'iid', 'sid', 'throttle',
  'lbtot', 'tracked', 'type', 'rate', 'rate_lim', 'rate_max', 'check_status', 'check_code', 'check_duration', 'hrsp_1xx',
  'hrsp_2xx', 'hrsp_3xx', 'hrsp_4xx', 'hrsp_5xx', 'hrsp_other', 'hanafail', 'req_rate', 'req_rate_max', 'req_tot', 'cli_abrt',
  'srv_abrt', 'comp_in', 'comp_out', 'comp_byp', 'comp_rsp', 'lastsess', 'last_chk', 'last_agt', 'qtime', 'ctime',
  'rtime', 'ttime', 'agent_status', 'agent_code', 'agent_duration', 'check_desc', 'agent_desc', 'check_rise', 'check_fall', 'check_health',
  'agent_rise', 'agent_fall', 'agent_health', 'addr', 'cookie', 'mode', 'algo', 'conn_rate', 'conn_rate_max', 'conn_tot',
  'intercepted', 'dcon', 'dses', 'wrew', 'connect', 'reuse', 'cache_lookups', 'cache_hits', 'srv_icur', 'src_ilim',
  'qtime_max', 'ctime_max', 'rtime_max', 'ttime_max', 'eint', 'idle_conn_cur', 'safe_conn_cur', 'used_conn_cur', 'need_conn_est', 'uweight',
] as const;

/** licproxy's columns, after HAProxy's. `features` is `NAME=inUse/issued` joined by `;`. */
export const LICPROXY_COLUMNS = [
  'tier', 'admin_state', 'weight_cfg', 'bindings', 'aff_hits', 'aff_misses', 'aff_evictions', 'failovers', 'last_failover',
  'active_tier', 'pool_mode', 'redundancy', 'master', 'features', 'listen', 'port', 'free_seats', 'feature',
] as const;

export const CSV_COLUMNS: readonly string[] = [...HAPROXY_COLUMNS, ...LICPROXY_COLUMNS];

type Column = (typeof HAPROXY_COLUMNS)[number] | (typeof LICPROXY_COLUMNS)[number];
type Cells = Partial<Record<Column, string | number | null | undefined>>;

const HEADER = `# ${CSV_COLUMNS.join(',')}\n`;
const NEEDS_QUOTES = /[",\r\n]/;

export function renderCsv(snapshot: StatsSnapshot): string {
  const now = snapshot.at;
  const parts: string[] = [HEADER];
  let iid = 0;
  for (const fe of snapshot.frontends) parts.push(row(frontendCells(fe, ++iid)));
  for (const pool of snapshot.pools) {
    iid++;
    pool.servers.forEach((s, i) => parts.push(row(serverCells(pool, s, iid, i + 1, now))));
    parts.push(row(backendCells(pool, iid, now)));
  }
  return parts.join('');
}

function frontendCells(fe: FrontendStats, iid: number): Cells {
  return {
    pxname: fe.name, svname: 'FRONTEND', scur: fe.scur, smax: fe.smax, slim: fe.slim, stot: fe.stot,
    bin: fe.bytesIn, bout: fe.bytesOut, status: fe.status === 'OPEN' ? 'OPEN' : 'STOP',
    pid: 1, iid, sid: 0, type: 0, mode: 'tcp', conn_tot: fe.stot, dcon: fe.denied,
    listen: fe.listen, port: fe.port,
  };
}

/**
 * HAProxy's check_status codes, so scripts that read its CSV keep working: layer 4 for a plain connect, layer 7
 * when the server answered a protocol question (lmstat features or master flag seen).
 */
export function haproxyCheckStatus(s: ServerStats): string | null {
  const c = s.lastCheck;
  if (!c) return s.status === 'no check' ? null : 'INI';
  const l7 = s.features.length > 0 || s.master !== undefined;
  if (c.ok) return l7 ? 'L7OK' : 'L4OK';
  if (/refused/.test(c.reason)) return 'L4CON';
  if (/timeout/.test(c.reason)) return l7 ? 'L7TOUT' : 'L4TOUT';
  if (/reset|closed|ECONN|EPIPE/.test(c.reason)) return 'SOCKERR';
  if (/^exit \d+/.test(c.reason)) return 'PROCERR';
  return 'L7STS';
}

function serverCells(pool: PoolStats, s: ServerStats, iid: number, sid: number, now: number): Cells {
  const firstPort = Object.values(s.ports)[0];
  return {
    pxname: pool.name, svname: s.name, qcur: null, qmax: null, scur: s.scur, smax: s.smax, slim: s.slim,
    stot: s.stot, bin: s.bytesIn, bout: s.bytesOut, econ: s.connectErrors, wretr: s.retries, wredis: s.redispatches,
    status: s.status, weight: s.weight.effective, act: s.tier === 0 ? 1 : 0, bck: s.tier === 0 ? 0 : 1,
    chkfail: s.checkFailures, chkdown: s.downTransitions, lastchg: ageSeconds(s.lastChangeAt, now),
    downtime: Math.floor(s.downtimeMs / 1000), pid: 1, iid, sid, lbtot: s.stot, type: 2,
    check_status: haproxyCheckStatus(s),
    check_duration: s.lastCheck ? Math.round(s.lastCheck.durationMs) : null,
    last_chk: s.lastCheck ? s.lastCheck.reason : null,
    check_desc: s.lastCheck ? (s.lastCheck.ok ? 'check passed' : 'check failed') : null,
    addr: firstPort === undefined ? null : `${s.host.includes(':') ? `[${s.host}]` : s.host}:${firstPort}`,
    mode: 'tcp', connect: s.stot + s.connectErrors, uweight: s.weight.configured,
    tier: s.tier, admin_state: s.adminState, weight_cfg: s.weight.configured, bindings: s.bindings,
    master: s.master === undefined ? null : s.master ? 1 : 0,
    features: s.features.map((f) => `${f.name}=${f.inUse}/${f.issued}`).join(';'),
    free_seats: s.freeSeats,
    feature: pool.feature,
  };
}

function backendCells(pool: PoolStats, iid: number, now: number): Cells {
  const { act, bck, weight, uweight } = upCounts(pool.servers);
  const t = pool.totals;
  return {
    pxname: pool.name, svname: 'BACKEND', qcur: pool.queue.cur, qmax: pool.queue.max, scur: t.scur, smax: t.smax,
    slim: t.slim, stot: t.stot, bin: t.bytesIn, bout: t.bytesOut, econ: t.connectErrors, wretr: t.retries,
    wredis: t.redispatches, status: pool.available ? 'UP' : 'DOWN', weight, act, bck,
    lastchg: ageSeconds(pool.lastChangeAt ?? null, now),
    downtime: pool.downtimeMs === undefined ? null : Math.floor(pool.downtimeMs / 1000),
    pid: 1, iid, sid: 0, lbtot: t.stot, type: 1, mode: 'tcp', algo: pool.balance, uweight,
    bindings: pool.affinity.bindings, aff_hits: pool.affinity.hits, aff_misses: pool.affinity.misses,
    aff_evictions: pool.affinity.evictions, failovers: pool.failovers,
    last_failover: ageSeconds(pool.lastFailoverAt, now), active_tier: pool.activeTier,
    pool_mode: pool.mode, redundancy: pool.redundancy,
    feature: pool.feature === undefined ? undefined : pool.featureServed === false ? `${pool.feature} (served by no server)` : pool.feature,
  };
}

function row(cells: Cells): string {
  let line = '';
  for (let i = 0; i < CSV_COLUMNS.length; i++) {
    if (i > 0) line += ',';
    const v = cells[CSV_COLUMNS[i] as Column];
    if (v === null || v === undefined) continue;
    line += typeof v === 'number' ? String(v) : csvField(v);
  }
  return line + '\n';
}

/** RFC 4180: a field holding a quote, comma or line break is quoted, with inner quotes doubled. */
export function csvField(s: string): string {
  return NEEDS_QUOTES.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function ageSeconds(at: number | null, now: number): number | null {
  return at === null ? null : Math.max(0, Math.floor((now - at) / 1000));
}
