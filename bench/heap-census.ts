/**
 * What a held connection costs on licproxy's JavaScript heap, by kind of object: an in-process ProxyRuntime (one
 * plain pool), connections opened through it by a child process (HELLO answered, then held), and the heap snapshots
 * before and after N more of them (a first batch of 300 warms the code) compared per (type, constructor), per
 * connection. The C++ halves of Node's handles
 * show as `synthetic:Node / ...` rows (their size as Node reports it to the snapshot).
 *
 *   node --expose-gc --import tsx bench/heap-census.ts [--connections 2000]
 *
 * The child is this file again (`--hold`): it runs the echo server and the clients, so only the proxy is in the
 * measured process.
 */
import { fork } from 'node:child_process';
import { createServer, connect, type Socket } from 'node:net';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';

/** Connections opened (and held) before the first snapshot. */
const WARM = 300;
/** Node types whose name is a constructor or class (objects, closures, native and synthetic wrappers). */
const NAMED = new Set(['object', 'closure', 'native', 'synthetic', 'hidden', 'array', 'regexp']);

const { values } = parseArgs({ options: { connections: { type: 'string', default: '2000' }, hold: { type: 'boolean', default: false } } });

if (values.hold) {
  // The child: an echo-ish server (one line in, one line out) and the held clients.
  const held: Socket[] = [];
  const srv = createServer((s) => {
    s.on('data', () => s.write('OK\n'));
    s.on('error', () => {});
  });
  srv.listen(0, '127.0.0.1', () => process.send!({ port: (srv.address() as { port: number }).port }));
  process.on('disconnect', () => process.exit(0)); // the measuring parent is gone
  process.on('message', async (m: { port: number; n: number }) => {
    for (let i = 0; i < m.n; i++) {
      const c = connect(m.port, '127.0.0.1');
      await new Promise((r) => c.once('connect', r));
      c.write('HELLO\n');
      await new Promise((r) => c.once('data', r));
      held.push(c);
    }
    process.send!({ done: true });
  });
} else {
  await census(Math.max(100, Math.min(9_000, Number(values.connections) || 2000)));
}

async function census(n: number): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) {
    process.stderr.write('run with node --expose-gc\n');
    process.exit(2);
  }
  const { ProxyRuntime } = await import('../src/proxy/runtime.ts');
  const { makeConfig } = await import('../test/helpers/proxy.ts');
  const { silentLogger } = await import('../src/common/logger.ts');
  const child = fork(new URL(import.meta.url).pathname, ['--hold'], { execArgv: process.execArgv.filter((a) => a !== '--expose-gc') });
  const port = await new Promise<number>((r) => child.once('message', (m: { port: number }) => r(m.port)));
  const rt = new ProxyRuntime(makeConfig({ pools: [{ name: 'p', servers: [{ name: 'a', port }] }] }), { log: silentLogger });
  await rt.start();
  const hold = async (count: number): Promise<void> => {
    child.send({ port: rt.port('p'), n: count });
    await new Promise((r) => child.once('message', r));
  };
  // A first batch compiles and warms every code path (code, feedback, the loader's sources): costs paid once, which
  // would otherwise be divided among the measured connections. Only the second batch is measured.
  await hold(WARM);
  const before = snapshotSizes(gc);
  await hold(n);
  const after = snapshotSizes(gc);
  const rows: { key: string; count: number; bytes: number }[] = [];
  for (const [key, v] of after) {
    const o = before.get(key) ?? { n: 0, size: 0 };
    const bytes = (v.size - o.size) / n;
    if (bytes >= 8) rows.push({ key, count: (v.n - o.n) / n, bytes });
  }
  rows.sort((a, b) => b.bytes - a.bytes);
  console.log(`# Heap census: ${n} held connections through one plain pool (${process.version})\n`);
  console.log('| kind (type:name) | objects per connection | bytes per connection |\n|---|---:|---:|');
  for (const r of rows) console.log(`| ${r.key} | ${r.count.toFixed(2)} | ${r.bytes.toFixed(0)} |`);
  console.log(`\nTotal of these rows: ${rows.reduce((a, r) => a + r.bytes, 0).toFixed(0)} bytes per connection.`);
  child.kill();
  await rt.stop();
  process.exit(0);
}

/** Self size and count per (node type, name) of a heap snapshot taken after two full collections. */
function snapshotSizes(gc: () => void): Map<string, { n: number; size: number }> {
  gc();
  gc();
  const file = v8.writeHeapSnapshot(join(tmpdir(), `heap-census-${process.pid}.heapsnapshot`));
  const snap = JSON.parse(readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  rmSync(file, { force: true });
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const nf = fields.length;
  const ti = fields.indexOf('type');
  const ni = fields.indexOf('name');
  const si = fields.indexOf('self_size');
  const out = new Map<string, { n: number; size: number }>();
  for (let i = 0; i < snap.nodes.length; i += nf) {
    const type = types[snap.nodes[i + ti]!]!;
    // A string's or a number's name is its value: grouped by type only (a key per value would make this map, which
    // lives through the second snapshot, the largest thing measured).
    const key = NAMED.has(type) ? `${type}:${snap.strings[snap.nodes[i + ni]!]!.slice(0, 50)}` : type;
    const e = out.get(key) ?? { n: 0, size: 0 };
    e.n++;
    e.size += snap.nodes[i + si]!;
    out.set(key, e);
  }
  return out;
}
