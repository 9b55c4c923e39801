/**
 * A worker's share of the connection limits. Workers count their own connections (a shared counter would cost an
 * IPC round trip per connection), so each limit is split between them: the shares add up to the configured limit,
 * and a limit smaller than the number of workers gives each worker one slot.
 */
import type { ProxyConfig } from '../../config/proxy-config.ts';

export function shareLimits(config: ProxyConfig, index: number, workers: number): ProxyConfig {
  if (workers <= 1) return config;
  const share = (limit: number): number => (limit <= 0 ? limit : Math.max(1, Math.floor(limit / workers) + (index < limit % workers ? 1 : 0)));
  return {
    ...config,
    global: { ...config.global, maxConnections: share(config.global.maxConnections) },
    frontends: config.frontends.map((f) => ({ ...f, maxConnections: share(f.maxConnections) })),
    pools: config.pools.map((p) => ({
      ...p,
      servers: p.servers.map((s) => ({ ...s, maxConnections: share(s.maxConnections) })),
    })),
  };
}
