import { fork } from 'node:child_process';
import v8 from 'node:v8';
import { readFileSync } from 'node:fs';
import { ProxyRuntime } from '../../src/proxy/runtime.ts';
import { makeConfig } from '../../test/helpers/proxy.ts';
import { silentLogger } from '../../src/common/logger.ts';
const N = 2000;
const child = fork(new URL('./holder.cjs', import.meta.url).pathname);
const port = await new Promise<number>((r) => child.once('message', (m: any) => r(m.port)));
const rt = new ProxyRuntime(makeConfig({ pools: [{ name: 'p', servers: [{ name: 'a', port }] }] }), { log: silentLogger });
await rt.start();
const gc = (globalThis as any).gc as () => void;
function census(): Map<string, { n: number; size: number }> {
  gc(); gc();
  const file = v8.writeHeapSnapshot('/tmp/h.heapsnapshot');
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const f = snap.snapshot.meta.node_fields as string[];
  const types = snap.snapshot.meta.node_types[0] as string[];
  const nf = f.length, ti = f.indexOf('type'), ni = f.indexOf('name'), si = f.indexOf('self_size');
  const out = new Map<string, { n: number; size: number }>();
  const nodes = snap.nodes as number[];
  for (let i = 0; i < nodes.length; i += nf) {
    const key = `${types[nodes[i + ti]!]}:${snap.strings[nodes[i + ni]!]}`.slice(0, 60);
    const e = out.get(key) ?? { n: 0, size: 0 };
    e.n++; e.size += nodes[i + si]!;
    out.set(key, e);
  }
  return out;
}
const a = census();
child.send({ port: rt.port('p'), n: N });
await new Promise((r) => child.once('message', r));
const b = census();
const rows: [string, number, number][] = [];
for (const [k, v] of b) {
  const o = a.get(k) ?? { n: 0, size: 0 };
  const dn = v.n - o.n, ds = v.size - o.size;
  if (ds / N >= 8) rows.push([k, dn / N, ds / N]);
}
rows.sort((x, y) => y[2] - x[2]);
let total = 0;
for (const r of rows) { total += r[2]; console.log(r[0].padEnd(60), r[1].toFixed(2).padStart(6), r[2].toFixed(0).padStart(6)); }
console.log('total per conn (rows >= 8 B)', total.toFixed(0));
child.kill();
process.exit(0);
