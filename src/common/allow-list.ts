import { BlockList, isIP } from 'node:net';

/** Parses `10.0.0.0/8`, `::1/128` or a bare address; returns an error text when malformed. */
export function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | string {
  const [address, prefixText, extra] = text.trim().split('/');
  const v = isIP(address ?? '');
  if (!address || v === 0 || extra !== undefined) return `expected a CIDR such as 10.0.0.0/8 or ::1/128, got "${text}"`;
  const max = v === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!/^\d+$/.test(prefixText ?? String(max)) || prefix > max) {
    return `prefix length must be 0..${max}, got "${prefixText}"`;
  }
  return { address, prefix, family: v === 4 ? 'ipv4' : 'ipv6' };
}

/**
 * Client address filter built once from CIDRs. `allows` accepts IPv4-mapped IPv6 (`::ffff:10.1.2.3`), which is
 * how a dual-stack listener reports IPv4 clients.
 */
export class AllowList {
  readonly #list = new BlockList();
  readonly cidrs: readonly string[];

  constructor(cidrs: readonly string[]) {
    this.cidrs = cidrs;
    for (const c of cidrs) {
      const p = parseCidr(c);
      if (typeof p === 'string') throw new Error(p);
      this.#list.addSubnet(p.address, p.prefix, p.family);
    }
  }

  allows(ip: string | undefined): boolean {
    if (!ip) return false;
    if (ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4) ip = ip.slice(7);
    const v = isIP(ip);
    if (v === 0) return false;
    return this.#list.check(ip, v === 4 ? 'ipv4' : 'ipv6');
  }
}

/** Strips the IPv4-mapped prefix so logs and affinity keys read `10.1.2.3`, not `::ffff:10.1.2.3`. */
export function plainIp(ip: string | undefined): string {
  if (!ip) return '';
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}
