/**
 * Idle held connections: N connections HELLO through the proxy and then hold; the proxy's memory cost per held
 * connection = (RSS with them - RSS before) / N, from /proc/<pid>/status VmRSS (kernel socket buffers are not in
 * RSS). The client side is spread over several holder processes to stay under the per-process fd limit.
 */
import { join } from 'node:path';
import { startChild, type ChildHandle } from '../child.ts';
import { REPO, tsArgs } from '../node-script.ts';
import { proxyCpu, proxyRssKb, type RunningTarget } from '../targets/target.ts';
import { licenseReady } from './license-load.ts';
import type { BenchSettings, Measurement, Workload } from './workload.ts';

/** Client sockets per holder process: well under the 20,000 fd limit. */
const PER_HOLDER = 5_000;

interface Holder {
  child: ChildHandle;
  next<T>(what: string, timeoutMs: number): Promise<T>;
}

function spawnHolder(i: number, dir: string): Holder {
  const child = startChild({
    name: `idle-holder${i}`,
    command: process.execPath,
    args: tsArgs('bench/lib/idle-holder.ts'),
    cwd: REPO,
    logFile: join(dir, `idle-holder${i}.log`),
    ipc: true,
  });
  const inbox: unknown[] = [];
  const waiters: ((m: unknown) => void)[] = [];
  child.process.on('message', (m) => {
    const w = waiters.shift();
    if (w) w(m);
    else inbox.push(m);
  });
  return {
    child,
    next<T>(what: string, timeoutMs: number): Promise<T> {
      if (inbox.length > 0) return Promise.resolve(inbox.shift() as T);
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`idle-holder${i}: no ${what} within ${timeoutMs}ms\n${child.logTail()}`)), timeoutMs);
        const onExit = () => reject(new Error(`idle-holder${i} exited before ${what}\n${child.logTail()}`));
        child.process.once('exit', onExit);
        waiters.push((m) => {
          clearTimeout(timer);
          child.process.off('exit', onExit);
          const err = (m as { error?: string }).error;
          if (err) reject(new Error(`idle-holder${i}: ${err}`));
          else resolve(m as T);
        });
      });
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function run(target: RunningTarget, s: BenchSettings): Promise<Measurement> {
  const n = s.idleConnections;
  const holderCount = Math.max(2, Math.ceil(n / PER_HOLDER));
  const holders = Array.from({ length: holderCount }, (_, i) => spawnHolder(i, s.dir));
  try {
    await Promise.all(holders.map((h) => h.next('ready', 30_000)));
    await licenseReady(target);
    await sleep(s.idleSettleMs);
    const rss0 = proxyRssKb(target);
    const cpu0 = proxyCpu(target);
    const t0 = performance.now();
    const openTimeout = 20_000 + n * 10;
    const shares = holders.map((_, i) => Math.floor(n / holderCount) + (i < n % holderCount ? 1 : 0));
    holders.forEach((h, i) => h.child.process.send({ open: { host: target.host, port: target.port, count: shares[i]!, timeoutMs: openTimeout } }));
    const opened = await Promise.all(holders.map((h) => h.next<{ opened: number; failed: number }>('opened', openTimeout + 10_000)));
    const openSeconds = (performance.now() - t0) / 1000;
    const held = opened.reduce((a, o) => a + o.opened, 0);
    const failed = opened.reduce((a, o) => a + o.failed, 0);
    await sleep(s.idleSettleMs);
    const rss1 = proxyRssKb(target);
    const cpu = target.pid === null ? null : proxyCpu(target) - cpu0;
    const failure = target.failure();
    if (failure) throw new Error(failure);
    const notes = failed > 0 ? [`${failed} of ${n} connections failed to open`] : [];
    const proxied = target.pid !== null;
    return {
      figures: {
        held,
        openRate: held / openSeconds,
        rssBefore: proxied ? rss0 / 1024 : null,
        rssAfter: proxied ? rss1 / 1024 : null,
        // KiB per connection; the 6 KB budget is read as 6 KiB.
        kbPerConn: proxied && held > 0 ? (rss1 - rss0) / held : null,
        cpu,
        errors: failed,
      },
      notes,
    };
  } finally {
    await Promise.all(
      holders.map(async (h) => {
        if (h.child.exited) return;
        try {
          h.child.process.send({ close: true });
          await h.next('closed', 15_000);
        } catch {
          /* stop() below ends it either way */
        }
        await h.child.stop(2_000);
      }),
    );
  }
}

export const idleWorkload: Workload = {
  name: 'idle',
  title: 'Idle held connections (memory)',
  description: (s) =>
    `${s.idleConnections.toLocaleString('en-US')} connections opened through the target (HELLO, then idle) from ${Math.max(2, Math.ceil(s.idleConnections / PER_HOLDER))} holder processes; proxy VmRSS read ${s.idleSettleMs / 1000}s before and ${s.idleSettleMs / 1000}s after`,
  backend: 'licd',
  maxConnections: (s) => s.idleConnections,
  metrics: [
    { key: 'held', label: 'held', better: 'higher', digits: 0 },
    { key: 'openRate', label: 'opened/s', better: 'higher', digits: 0 },
    { key: 'rssBefore', label: 'RSS before MiB', better: 'lower', digits: 1 },
    { key: 'rssAfter', label: 'RSS after MiB', better: 'lower', digits: 1 },
    { key: 'kbPerConn', label: 'KiB per conn', better: 'lower', digits: 2, ratio: true },
    { key: 'cpu', label: 'proxy CPU s (open)', better: 'lower', digits: 2 },
    { key: 'errors', label: 'failed', better: 'lower', digits: 0 },
  ],
  headline: 'kbPerConn',
  run,
};
