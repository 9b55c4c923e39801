/**
 * Shared pieces of the license-aware routing tests (SPEC 8.1): in-process licd servers with one feature, the real
 * balancer with its real lmstat checks in front, and license clients that say which server answered them.
 */
import type { ExecutionContext } from 'ava';
import { RuntimeStatsSource } from '../../src/stats/runtime-stats-source.ts';
import type { ProxyApp } from '../../src/proxy/app.ts';
import type { StatsSnapshot } from '../../src/stats/snapshot.ts';
import { LineClient, startLicd, type InProcessLicd } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';
import { startBalancer } from '../failover/support.ts';

export const FEATURE = 'F';

/** In-process licd servers, one per name, each with `seats[i]` seats of FEATURE; stopped at teardown. */
export async function licds(t: ExecutionContext, names: string[], seats: number[], feature = FEATURE): Promise<Record<string, InProcessLicd>> {
  const out: Record<string, InProcessLicd> = {};
  for (let i = 0; i < names.length; i++) {
    const l = await startLicd({ name: names[i]!, features: [{ name: feature, count: seats[i]! }] });
    t.teardown(() => l.stop());
    out[names[i]!] = l;
  }
  return out;
}

/** Seats of `feature` in use on an in-process licd now (what its STATUS would say at this instant). */
export function inUse(l: InProcessLicd, feature = FEATURE): number {
  return l.server.pool(feature)!.inUse;
}

export function free(l: InProcessLicd, feature = FEATURE): number {
  return l.server.pool(feature)!.free;
}

/** The balancer from YAML; resolves once every server is UP and has reported its seats. */
export async function balancer(t: ExecutionContext, yaml: string, pool = 'lic'): Promise<{ app: ProxyApp; port: number }> {
  const app = await startBalancer(t, yaml);
  await waitFor(
    () => app.runtime.pool(pool)!.snapshot().servers.every((s) => s.status === 'UP' && s.lastCheck?.features !== undefined),
    { timeout: 15_000, what: `pool ${pool}: every server UP with seat counts` },
  );
  return { app, port: app.runtime.port(pool) };
}

export function serversYaml(ls: Record<string, InProcessLicd>, extra: Record<string, string> = {}): string {
  return Object.entries(ls)
    .map(([n, l]) => `      - { name: ${n}, address: 127.0.0.1:${l.ports.license}${extra[n] ? `, ${extra[n]}` : ''} }`)
    .join('\n');
}

export interface Checkout {
  client: LineClient;
  /** The server that answered (from HELLO's `OK server=<name>`). */
  server: string;
  granted: boolean;
  answer: string;
}

/** A license client through the proxy: HELLO (to learn the server), then CHECKOUT; the connection stays open. */
export async function checkout(t: ExecutionContext, port: number, feature = FEATURE): Promise<Checkout> {
  const client = await LineClient.connect(port);
  t.teardown(() => client.destroy());
  const hello = await client.request('HELLO user=test host=ws');
  const server = /server=(\S+)/.exec(hello)?.[1] ?? '?';
  const answer = await client.request(`CHECKOUT ${feature}`);
  return { client, server, granted: answer.startsWith('GRANTED'), answer };
}

/** Closes a client's connection and waits until it is gone (its seat is back on the server). */
export async function checkin(c: Checkout): Promise<void> {
  c.client.end();
  await c.client.closed;
}

export function statsOf(app: ProxyApp): StatsSnapshot {
  return new RuntimeStatsSource(app).snapshot();
}

export function countBy(list: readonly Checkout[], pred: (c: Checkout) => boolean = () => true): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of list) if (pred(c)) out[c.server] = (out[c.server] ?? 0) + 1;
  return out;
}
