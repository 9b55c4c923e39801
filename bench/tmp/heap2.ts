import { fork } from 'node:child_process';
import v8 from 'node:v8';
import { readFileSync } from 'node:fs';
import { ProxyRuntime } from '../../src/proxy/runtime.ts';
import { makeConfig } from '../../test/helpers/proxy.ts';
import { silentLogger } from '../../src/common/logger.ts';
const N = 1000;
const child = fork(new URL('./holder.cjs', import.meta.url).pathname);
const port = await new Promise<number>((r) => child.once('message', (m: any) => r(m.port)));
const rt = new ProxyRuntime(makeConfig({ pools: [{ name: 'p', servers: [{ name: 'a', port }] }] }), { log: silentLogger });
await rt.start();
const gc = (globalThis as any).gc as () => void;
function load() { gc(); gc(); const file = v8.writeHeapSnapshot('/tmp/h2.heapsnapshot'); return JSON.parse(readFileSync(file, 'utf8')); }
const A = load();
const meta = A.snapshot.meta; const nf = meta.node_fields.length; const idI = meta.node_fields.indexOf('id');
const ids = new Set<number>(); for (let i = 0; i < A.nodes.length; i += nf) ids.add(A.nodes[i + idI]);
child.send({ port: rt.port('p'), n: N });
await new Promise((r) => child.once('message', r));
const S = load();
const f = S.snapshot.meta.node_fields as string[]; const ef = S.snapshot.meta.edge_fields as string[];
const types = S.snapshot.meta.node_types[0]; const etypes = S.snapshot.meta.edge_types[0];
const ti = f.indexOf('type'), ni = f.indexOf('name'), si = f.indexOf('self_size'), eci = f.indexOf('edge_count'), id2 = f.indexOf('id');
const eti = ef.indexOf('type'), eni = ef.indexOf('name_or_index'), eto = ef.indexOf('to_node');
const nodes = S.nodes as number[]; const edges = S.edges as number[]; const strs = S.strings as string[];
// parents: for each new node of interest, find who points to it (edge name)
const firstEdge: number[] = []; let e = 0;
for (let i = 0; i < nodes.length; i += nf) { firstEdge.push(e); e += nodes[i + eci]! * ef.length; }
const want = process.argv[2] ?? 'concatenated string';
const counts = new Map<string, number>();
for (let i = 0, k = 0; i < nodes.length; i += nf, k++) {
  const ec = nodes[i + eci]!;
  for (let j = 0; j < ec; j++) {
    const ei = firstEdge[k]! + j * ef.length;
    const to = edges[ei + eto]!;
    const tname = types[nodes[to + ti]!];
    if (tname !== want && strs[nodes[to + ni]!] !== want) continue;
    if (ids.has(nodes[to + id2]!)) continue;
    const et = etypes[edges[ei + eti]!];
    const en = et === 'element' || et === 'hidden' ? '#' : strs[edges[ei + eni]!];
    const key = `${types[nodes[i + ti]!]}:${strs[nodes[i + ni]!]?.slice(0, 40)} -[${et}:${en}]->`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
}
for (const [k, v] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log((v / N).toFixed(2), k);
child.kill(); process.exit(0);
