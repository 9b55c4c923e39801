/**
 * Memory per affinity binding and lookup cost at a given table size.
 * Usage: node --expose-gc --import tsx bench/affinity-memory.ts [--bindings 1000000]
 */
import { AffinityTable } from '../src/proxy/affinity/affinity-table.ts';

const at = process.argv.indexOf('--bindings');
const n = at > 0 ? Number(process.argv[at + 1]) : 1_000_000;
if (!Number.isInteger(n) || n < 1) {
  process.stderr.write('--bindings: expected a whole number above 0\n');
  process.exit(1);
}
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  process.stderr.write('run with node --expose-gc for a meaningful figure\n');
  process.exit(1);
}
const servers = Array.from({ length: 3 }, () => ({ bindingEpoch: 0 }));
gc();
const before = process.memoryUsage().heapUsed;
// Keys are made inside the measured window: in the proxy each is the client's address string, held by the table.
const keys = Array.from({ length: n }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
const table = new AffinityTable({ ttl: 3_600_000, maxBindings: n });
for (let i = 0; i < n; i++) {
  table.bind(keys[i]!, servers[i % 3]!);
  table.release(keys[i]!);
}
gc();
const after = process.memoryUsage().heapUsed;
const lookups = 1_000_000;
const t0 = process.hrtime.bigint();
for (let i = 0; i < lookups; i++) {
  const k = keys[(i * 7919) % n]!;
  table.acquire(k);
  table.release(k);
}
const ns = Number(process.hrtime.bigint() - t0) / lookups;
process.stdout.write(
  `bindings: ${table.size}\nheap per binding: ${((after - before) / n).toFixed(0)} bytes (including the address string key)\n` +
    `acquire+release: ${ns.toFixed(0)} ns per lookup at ${n} bindings\n`,
);
