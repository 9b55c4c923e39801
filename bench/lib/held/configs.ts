/**
 * The generated files of a held-connections run: one licd file per daemon (one feature with seats to spare and a
 * heartbeat timeout far beyond the run, so a seat is freed only by its connection closing) and the licproxy file.
 */
import { stringify } from 'yaml';

export const HELD_FEATURE = 'HELD';

export function licdFile(name: string, license: number, tokens: number, seats: number): string {
  return stringify({
    server: { name, host: '127.0.0.1', ports: { license, tokens }, heartbeat_timeout: '1h' },
    features: [{ name: HELD_FEATURE, count: seats }],
  });
}

export interface ProxyFileOptions {
  workers: number;
  statsPort: number;
  frontendPorts: number[];
  licdPorts: number[];
  check: 'tcp' | 'lmstat';
}

export function proxyFile(o: ProxyFileOptions): string {
  // workers: 1 is the default: leaving the key out keeps the file valid for a licproxy that predates it.
  const global: Record<string, unknown> = { max_connections: 50_000, log_level: 'warn', grace: '1s' };
  if (o.workers > 1) global.workers = o.workers;
  return stringify({
    global,
    stats: { listen: `127.0.0.1:${o.statsPort}` },
    pools: {
      held: {
        balance: 'leastconn',
        // lmstat would return every user line (thousands) each interval: kept slower than tcp.
        check: o.check === 'tcp' ? { type: 'tcp', interval: '1s' } : { type: 'lmstat', interval: '5s', timeout: '3s' },
        servers: o.licdPorts.map((p, i) => ({ name: `licd${i}`, address: `127.0.0.1:${p}` })),
      },
    },
    frontends: o.frontendPorts.map((p, i) => ({ name: `held${i}`, listen: `127.0.0.1:${p}`, pool: 'held' })),
  });
}
