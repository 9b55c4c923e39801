import { isIP } from 'node:net';

export interface HostPort {
  host: string;
  port: number;
}

/**
 * Parses `host:port`, `1.2.3.4:port` or `[::1]:port`. Returns an error text (what would be right) when malformed.
 * Port 0 is accepted only where `allowZero` says so (listeners in tests pick a free port with it).
 */
export function parseHostPort(text: string, allowZero = false): HostPort | string {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:\s[\]]+):(\d+)$/.exec(text);
  if (!m) return `expected host:port (IPv6 as [::1]:port), got "${text}"`;
  const host = m[1]!;
  if (text.startsWith('[') && isIP(host) !== 6) return `"${host}" is not an IPv6 address`;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port > 65535 || (port === 0 && !allowZero)) {
    return `port must be ${allowZero ? '0' : '1'}..65535, got ${m[2]}`;
  }
  if (!isIP(host) && !/^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$/.test(host)) {
    return `"${host}" is neither an IP address nor a host name`;
  }
  return { host, port };
}

export function formatHostPort(a: HostPort): string {
  return isIP(a.host) === 6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Validates a bare host (IP or DNS name). */
export function isHost(text: string): boolean {
  return typeof parseHostPort(`${isIP(text) === 6 ? `[${text}]` : text}:1`) !== 'string';
}
