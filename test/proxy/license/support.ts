/**
 * Shared pieces of the licd-protocol tests (route: feature, retry_denied, failover replay): in-process licd servers
 * with named features, the real balancer in front of them with lmstat checks, and a reader of their seat counts.
 */
import type { ExecutionContext } from 'ava';
import type { Logger } from '../../../src/common/logger.ts';
import { silentLogger } from '../../../src/common/logger.ts';
import { parseProxyConfig } from '../../../src/config/proxy-schema.ts';
import { createMonitorFactory } from '../../../src/health/health-monitor.ts';
import { ProxyApp } from '../../../src/proxy/app.ts';
import { licdForTest, type FeatureSpec, type InProcessLicd, type LineClient } from '../../helpers/licd.ts';
import { waitFor } from '../../helpers/wait.ts';
import { freeFrontendPorts } from '../../helpers/ports.ts';

export interface NamedLicd {
  name: string;
  licd: InProcessLicd;
  connect: (port?: number) => Promise<LineClient>;
}

export async function licds(t: ExecutionContext, specs: Array<{ name: string; features: FeatureSpec[] }>): Promise<NamedLicd[]> {
  return Promise.all(
    specs.map(async (s) => {
      const { licd, connect } = await licdForTest(t, { name: s.name, features: s.features });
      return { name: s.name, licd, connect };
    }),
  );
}

/** The pool YAML lines for these servers (one `address:` each, named as the licd names itself). */
export function serverLines(servers: NamedLicd[], extra: (s: NamedLicd) => string = () => ''): string {
  return servers.map((s) => `      - { name: ${s.name}, address: 127.0.0.1:${s.licd.ports.license}${extra(s)} }`).join('\n');
}

/** The balancer from YAML with the real monitors; waits until every server is UP with a check that listed features. */
export async function balancer(t: ExecutionContext, yaml: string, opts: { log?: Logger; pool?: string; waitUp?: boolean } = {}): Promise<ProxyApp> {
  const config = parseProxyConfig('license-test.yaml', await freeFrontendPorts(yaml));
  const app = await ProxyApp.start({ config, log: opts.log ?? silentLogger, monitorFactory: createMonitorFactory() });
  t.teardown(() => app.stop(0));
  const pool = opts.pool ?? config.pools[0]!.name;
  if (opts.waitUp !== false) {
    await waitFor(
      () => app.runtime.pool(pool)!.servers.every((s) => s.status === 'UP' && s.lastCheck?.features !== undefined),
      { timeout: 15_000, what: `every server of ${pool} UP and checked` },
    );
  }
  return app;
}

/** Seats in use of `feature` on a server, from its own status (the truth, not the proxy's view). */
export function inUse(l: InProcessLicd, feature: string): number {
  return l.server.status().features.find((f) => f.name === feature)?.inUse ?? -1;
}

export const CHECK = '{ type: lmstat, interval: 200ms, fast_interval: 100ms, down_interval: 500ms, timeout: 500ms, rise: 1, fall: 1 }';
