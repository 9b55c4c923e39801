/**
 * PROXY protocol v1 (text) and v2 (binary), as specified by HAProxy (doc/proxy-protocol.txt): the balancer's
 * `send_proxy` writes a header before the client's first byte, and licd (`proxy_protocol: true`) reads it so that
 * allow lists and status show the real client address.
 */
import { isIP } from 'node:net';
import { plainIp } from './allow-list.ts';

export interface ProxyEndpoint {
  address: string;
  port: number;
}

/** v2 signature: `\r\n\r\n\0\r\nQUIT\n`. */
export const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** Longest v1 header, CRLF included (spec: 107 bytes). */
export const PROXY_V1_MAX = 107;
const V2_FIXED = 16;

type Family = 4 | 6;

/** Both endpoints in one family: IPv4-mapped IPv6 is unmapped, and a mixed pair is expressed in IPv6. */
function pair(src: ProxyEndpoint, dst: ProxyEndpoint): { family: Family; src: string; dst: string } | null {
  let s = plainIp(src.address);
  let d = plainIp(dst.address);
  const fs = isIP(s);
  const fd = isIP(d);
  if (fs === 0 || fd === 0 || !validPort(src.port) || !validPort(dst.port)) return null;
  if (fs === fd) return { family: fs as Family, src: s, dst: d };
  if (fs === 4) s = `::ffff:${s}`;
  if (fd === 4) d = `::ffff:${d}`;
  return { family: 6, src: s, dst: d };
}

function validPort(p: number): boolean {
  return Number.isInteger(p) && p >= 0 && p <= 65535;
}

/** `PROXY TCP4 src dst sport dport\r\n`; `PROXY UNKNOWN\r\n` when either endpoint is missing or not an IP. */
export function encodeProxyV1(src?: ProxyEndpoint | null, dst?: ProxyEndpoint | null): Buffer {
  const p = src && dst ? pair(src, dst) : null;
  if (!p) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  return Buffer.from(`PROXY TCP${p.family} ${p.src} ${p.dst} ${src!.port} ${dst!.port}\r\n`, 'latin1');
}

/** Binary v2 header: PROXY over TCP4/TCP6, or LOCAL (no addresses: health checks) when an endpoint is missing. */
export function encodeProxyV2(src?: ProxyEndpoint | null, dst?: ProxyEndpoint | null): Buffer {
  const p = src && dst ? pair(src, dst) : null;
  if (!p) {
    const b = Buffer.alloc(V2_FIXED);
    PROXY_V2_SIGNATURE.copy(b, 0);
    b[12] = 0x20; // version 2, LOCAL
    b[13] = 0x00; // UNSPEC
    return b;
  }
  const alen = p.family === 4 ? 12 : 36;
  const b = Buffer.alloc(V2_FIXED + alen);
  PROXY_V2_SIGNATURE.copy(b, 0);
  b[12] = 0x21; // version 2, PROXY
  b[13] = p.family === 4 ? 0x11 : 0x21; // TCP over IPv4 / IPv6
  b.writeUInt16BE(alen, 14);
  const n = p.family === 4 ? 4 : 16;
  writeIp(b, V2_FIXED, p.src, p.family);
  writeIp(b, V2_FIXED + n, p.dst, p.family);
  b.writeUInt16BE(src!.port, V2_FIXED + 2 * n);
  b.writeUInt16BE(dst!.port, V2_FIXED + 2 * n + 2);
  return b;
}

function writeIp(b: Buffer, at: number, ip: string, family: Family): void {
  if (family === 4) {
    const parts = ip.split('.');
    for (let i = 0; i < 4; i++) b[at + i] = Number(parts[i]);
    return;
  }
  const words = ipv6Words(ip);
  for (let i = 0; i < 8; i++) b.writeUInt16BE(words[i]!, at + 2 * i);
}

/** The 8 16-bit words of a valid IPv6 address (`::` and a dotted IPv4 tail expanded). */
function ipv6Words(ip: string): number[] {
  let text = ip;
  const tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const o = v4[1]!.split('.').map(Number);
    tail.push((o[0]! << 8) | o[1]!, (o[2]! << 8) | o[3]!);
    text = text.slice(0, -v4[1]!.length);
    if (text.endsWith(':') && !text.endsWith('::')) text = text.slice(0, -1);
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const hw = head ? head.split(':').map((h) => parseInt(h, 16)) : [];
  const rw = rest ? rest.split(':').map((h) => parseInt(h, 16)) : [];
  const fill = 8 - tail.length - hw.length - rw.length;
  return [...hw, ...new Array<number>(rest === undefined ? 0 : fill).fill(0), ...rw, ...tail];
}

function readIp(b: Buffer, at: number, family: Family): string {
  if (family === 4) return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
  // IPv4-mapped (`::ffff:10.1.2.3`) in the dotted form net.Socket uses, so allow lists and plainIp recognise it.
  if (b.readUInt32BE(at) === 0 && b.readUInt32BE(at + 4) === 0 && b.readUInt32BE(at + 8) === 0xffff) {
    return `::ffff:${readIp(b, at + 12, 4)}`;
  }
  const words: string[] = [];
  for (let i = 0; i < 8; i++) words.push(b.readUInt16BE(at + 2 * i).toString(16));
  // Compress the longest run of zero words so the text matches what net.Socket reports.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return words.join(':');
  return `${words.slice(0, best).join(':')}::${words.slice(best + bestLen).join(':')}`;
}

export type ProxyHeaderResult =
  /** Not enough bytes yet to tell or to finish the header. */
  | { kind: 'more' }
  | { kind: 'error'; message: string }
  | {
      kind: 'ok';
      version: 1 | 2;
      /** Bytes of the header; application data starts right after. */
      consumed: number;
      /** `LOCAL` (v2) and `UNKNOWN` (v1) carry no addresses: the connection's own addresses apply. */
      command: 'PROXY' | 'LOCAL';
      source: ProxyEndpoint | null;
      destination: ProxyEndpoint | null;
    };

const MORE: ProxyHeaderResult = { kind: 'more' };

/** Whether `buf` starts with as much of `sig` as it holds. */
function startsLike(buf: Buffer, sig: Buffer): boolean {
  const n = Math.min(buf.length, sig.length);
  for (let i = 0; i < n; i++) if (buf[i] !== sig[i]) return false;
  return true;
}

/**
 * Decodes a PROXY header (v1 or v2) at the start of `buf`, which holds every byte received so far on the
 * connection. Call again with more bytes while it answers `more`; at most 107 bytes (v1) or 16 + 65535 (v2) are
 * ever needed.
 */
export function decodeProxyHeader(buf: Buffer): ProxyHeaderResult {
  if (buf.length === 0) return MORE;
  if (buf[0] === 0x0d) {
    if (!startsLike(buf, PROXY_V2_SIGNATURE)) return { kind: 'error', message: 'not a PROXY protocol header' };
    return decodeV2(buf);
  }
  if (!startsLike(buf, V1_PREFIX)) return { kind: 'error', message: 'not a PROXY protocol header' };
  return decodeV1(buf);
}

function decodeV1(buf: Buffer): ProxyHeaderResult {
  const lf = buf.indexOf(0x0a);
  if (lf === -1) {
    return buf.length >= PROXY_V1_MAX ? { kind: 'error', message: `PROXY v1 header longer than ${PROXY_V1_MAX} bytes` } : MORE;
  }
  if (lf + 1 > PROXY_V1_MAX) return { kind: 'error', message: `PROXY v1 header longer than ${PROXY_V1_MAX} bytes` };
  if (buf[lf - 1] !== 0x0d) return { kind: 'error', message: 'PROXY v1 header must end in CRLF' };
  const consumed = lf + 1;
  const parts = buf.toString('latin1', 0, lf - 1).split(' ');
  const proto = parts[1];
  if (proto === 'UNKNOWN') return { kind: 'ok', version: 1, consumed, command: 'LOCAL', source: null, destination: null };
  if ((proto !== 'TCP4' && proto !== 'TCP6') || parts.length !== 6) {
    return { kind: 'error', message: 'PROXY v1 header must be "PROXY TCP4|TCP6 src dst sport dport" or "PROXY UNKNOWN"' };
  }
  const family = proto === 'TCP4' ? 4 : 6;
  const [, , src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  if (isIP(src) !== family || isIP(dst) !== family) {
    return { kind: 'error', message: `PROXY v1 addresses are not ${proto} addresses` };
  }
  const sp = v1Port(sport);
  const dp = v1Port(dport);
  if (sp < 0 || dp < 0) return { kind: 'error', message: 'PROXY v1 ports must be 0..65535' };
  return {
    kind: 'ok',
    version: 1,
    consumed,
    command: 'PROXY',
    source: { address: src, port: sp },
    destination: { address: dst, port: dp },
  };
}

function v1Port(text: string): number {
  if (!/^\d{1,5}$/.test(text)) return -1;
  const n = Number(text);
  return n <= 65535 ? n : -1;
}

function decodeV2(buf: Buffer): ProxyHeaderResult {
  if (buf.length < V2_FIXED) return MORE;
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return { kind: 'error', message: `PROXY v2 header has version ${verCmd >> 4}, expected 2` };
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return { kind: 'error', message: `PROXY v2 header has unknown command ${cmd}` };
  const len = buf.readUInt16BE(14);
  const consumed = V2_FIXED + len;
  if (buf.length < consumed) return MORE;
  if (cmd === 0) return { kind: 'ok', version: 2, consumed, command: 'LOCAL', source: null, destination: null };
  const fam = buf[13]!;
  const family: Family | 0 = fam === 0x11 ? 4 : fam === 0x21 ? 6 : 0;
  // UDP, UNIX sockets or UNSPEC: a valid header whose addresses licd cannot use; treat as LOCAL.
  if (family === 0) return { kind: 'ok', version: 2, consumed, command: 'LOCAL', source: null, destination: null };
  const n = family === 4 ? 4 : 16;
  if (len < 2 * n + 4) return { kind: 'error', message: `PROXY v2 address block too short (${len} bytes)` };
  return {
    kind: 'ok',
    version: 2,
    consumed,
    command: 'PROXY',
    source: { address: readIp(buf, V2_FIXED, family), port: buf.readUInt16BE(V2_FIXED + 2 * n) },
    destination: { address: readIp(buf, V2_FIXED + n, family), port: buf.readUInt16BE(V2_FIXED + 2 * n + 2) },
  };
}
