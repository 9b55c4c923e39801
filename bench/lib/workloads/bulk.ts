/**
 * Bulk MB/s through one connection, to the sink ('S': client -> server) or from the source ('R': server ->
 * client), stopping at `bulkMaxBytes` or the duration, whichever comes first. Upload time ends when the sink has
 * acknowledged the last byte, so bytes still buffered in the proxy are not counted as delivered.
 */
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { proxyCpu, type RunningTarget } from '../targets/target.ts';
import { echoOnce } from './accept.ts';
import type { BenchSettings, Measurement, MetricDef, Workload } from './workload.ts';

const BLOCK = Buffer.alloc(64 * 1024, 0x62);

interface Transfer {
  bytes: number;
  seconds: number;
}

function upload(host: string, port: number, maxBytes: number, durationMs: number): Promise<Transfer> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port });
    let t0 = 0;
    let written = 0;
    let writing = true;
    let acked = 0;
    let pending = '';
    let deadline = 0;
    let done = false;
    const guard = setTimeout(() => finish(new Error(`upload: the sink acknowledged only ${acked} of ${written} bytes in time`)), durationMs + 15_000);
    function finish(err?: Error): void {
      if (done) return;
      done = true;
      clearTimeout(guard);
      sock.destroy();
      if (err) reject(err);
      else resolve({ bytes: written, seconds: (performance.now() - t0) / 1000 });
    }
    function pump(): void {
      while (writing) {
        if (written >= maxBytes || performance.now() >= deadline) {
          writing = false;
          if (acked >= written) finish();
          return;
        }
        written += BLOCK.length;
        if (!sock.write(BLOCK)) return; // 'drain' resumes
      }
    }
    sock.on('drain', pump);
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      pending += d;
      const nl = pending.lastIndexOf('\n');
      if (nl < 0) return;
      const prev = pending.lastIndexOf('\n', nl - 1);
      acked = Number(pending.slice(prev + 1, nl));
      pending = pending.slice(nl + 1);
      if (!writing && acked >= written) finish();
    });
    sock.on('error', (err) => finish(err));
    sock.on('close', () => finish(new Error(`upload: connection closed after ${acked} of ${written} bytes acknowledged`)));
    sock.on('connect', () => {
      sock.write('S');
      t0 = performance.now();
      deadline = t0 + durationMs;
      pump();
    });
  });
}

function download(host: string, port: number, maxBytes: number, durationMs: number): Promise<Transfer> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port });
    let t0 = 0;
    let deadline = Infinity;
    let bytes = 0;
    let done = false;
    const guard = setTimeout(() => finish(), durationMs + 15_000);
    function finish(err?: Error): void {
      if (done) return;
      done = true;
      clearTimeout(guard);
      const seconds = (performance.now() - t0) / 1000;
      sock.destroy();
      if (err) reject(err);
      else resolve({ bytes, seconds });
    }
    sock.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes >= maxBytes || performance.now() >= deadline) finish();
    });
    sock.on('error', (err) => finish(err));
    sock.on('close', () => finish(bytes > 0 ? undefined : new Error('download: closed before any byte')));
    sock.on('connect', () => {
      t0 = performance.now();
      deadline = t0 + durationMs;
      sock.write('R');
    });
  });
}

async function ready(target: RunningTarget): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const failure = target.failure();
    if (failure) throw new Error(failure);
    if ((await echoOnce(target.host, target.port, 2_000)) !== null) return;
    if (Date.now() > deadline) throw new Error(`${target.name}: no echo through it within 20s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function makeBulk(direction: 'up' | 'down'): Workload {
  const go = direction === 'up' ? upload : download;
  const metrics: MetricDef[] = [
    { key: 'mbps', label: 'MB/s', better: 'higher', digits: 0, ratio: true },
    { key: 'mb', label: 'MB moved', better: 'higher', digits: 0 },
    { key: 'cpu', label: 'proxy CPU s', better: 'lower', digits: 2 },
    { key: 'perCpu', label: 'MB per proxy CPU-s', better: 'higher', digits: 0, ratio: true },
  ];
  return {
    name: direction === 'up' ? 'bulk' : 'bulk-down',
    title: direction === 'up' ? 'Bulk upload, one connection (client -> sink)' : 'Bulk download, one connection (source -> client)',
    description: (s) =>
      `one connection ${direction === 'up' ? 'writes 64 KiB blocks to' : 'reads 64 KiB blocks from'} the plain TCP ${direction === 'up' ? 'sink' : 'source'} for ${s.durations.bulk / 1000}s or ${(s.bulkMaxBytes / 1e9).toFixed(1)} GB, whichever comes first (MB = 10^6 bytes)`,
    backend: 'sink',
    maxConnections: () => 10,
    metrics,
    headline: 'mbps',
    async run(target: RunningTarget, s: BenchSettings): Promise<Measurement> {
      await ready(target);
      if (s.warmupMs > 0) await go(target.host, target.port, s.bulkMaxBytes, Math.min(s.warmupMs, 1_000));
      const cpu0 = proxyCpu(target);
      const r = await go(target.host, target.port, s.bulkMaxBytes, s.durations.bulk);
      const cpu = target.pid === null ? null : proxyCpu(target) - cpu0;
      const failure = target.failure();
      if (failure) throw new Error(failure);
      const mb = r.bytes / 1e6;
      return { figures: { mbps: mb / r.seconds, mb, cpu, perCpu: cpu ? mb / cpu : null }, notes: [] };
    },
  };
}

export const bulkWorkload = makeBulk('up');
export const bulkDownWorkload = makeBulk('down');
