/**
 * Runs the C prototype (proto.c, README.md beside it) as a proxy: `serve.ts <port> <host:port>...` listens on
 * 127.0.0.1:<port> and sends the connections round robin to the upstreams (loopback only). The addon is compiled
 * on first use into build/ with the system's C compiler (CC, default cc) and Node's headers, found where
 * scripts/build-native.js finds them for the native relay.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Prototype {
  serve(port: number, placed: (n: number) => void, ended: (n: number) => void, ports: Int32Array): void;
}

const here = dirname(fileURLToPath(import.meta.url));
const addonPath = join(here, 'build', `proto-${process.versions.modules}.node`);
if (!existsSync(addonPath)) {
  // The places scripts/build-native.js looks, in its order.
  const candidates = [process.env.LICPROXY_NODE_HEADERS, join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node'];
  const include = candidates.find((d) => d !== undefined && existsSync(join(d, 'node_api.h')) && existsSync(join(d, 'uv.h')));
  if (include === undefined) throw new Error(`c-accept prototype: no Node headers (node_api.h, uv.h) in ${candidates.filter(Boolean).join(', ')}`);
  mkdirSync(dirname(addonPath), { recursive: true });
  execFileSync(process.env.CC || 'cc', ['-O2', '-fPIC', '-shared', '-std=gnu11', '-Wall', '-Wextra', `-I${include}`, join(here, 'proto.c'), '-o', addonPath]);
}
const proto = createRequire(import.meta.url)(addonPath) as Prototype;

const [portArg, ...upstreamArgs] = process.argv.slice(2);
const upstreams = upstreamArgs.map((a) => Number(a.slice(a.lastIndexOf(':') + 1)));
if (!portArg || upstreams.length === 0 || upstreams.some((p) => !(p > 0))) {
  process.stderr.write('usage: serve.ts <port> <127.0.0.1:port>...\n');
  process.exit(2);
}
const ports = new Int32Array(64);
let next = 0;
// Stands in for the Connection object and its registries that placement creates in licproxy.
const live = new Map<number, { server: number; at: number; bytesIn: number; bytesOut: number }>();
let key = 0;
proto.serve(
  Number(portArg),
  (n) => {
    for (let i = 0; i < n; i++) {
      const server = upstreams[next++ % upstreams.length]!;
      ports[i] = server;
      live.set(key++ & 0xffff, { server, at: 0, bytesIn: 0, bytesOut: 0 });
    }
  },
  () => {},
  ports,
);
setInterval(() => {}, 60_000); // the uv_poll keeps the loop alive anyway; this keeps the intent visible
process.on('SIGTERM', () => process.exit(0));
process.stdout.write(`listening ${portArg}\n`);
