import type { DirectSpec, RunningTarget, StartContext } from './target.ts';

/** No proxy: the load goes straight to the first backend, the limit every proxy is measured against. */
export function startDirect(spec: DirectSpec, ctx: StartContext): RunningTarget {
  const u = ctx.upstreams[0]!;
  return { name: spec.name, host: u.host, port: u.port, pid: null, failure: () => null, stop: async () => {} };
}
