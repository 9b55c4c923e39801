/**
 * The floor: the textbook Node proxy the performance issue compares against.
 *   node --import tsx bench/naive-proxy.ts <listen-port> <host:port> [<host:port> ...]
 * Upstreams are taken in turn (roundrobin). The only additions to the textbook version are the error handlers
 * without which one reset would crash the process mid-benchmark.
 */
import net from 'node:net';

const listenPort = Number(process.argv[2]);
const upstreams = process.argv.slice(3).map((a) => {
  const i = a.lastIndexOf(':');
  return { host: a.slice(0, i), port: Number(a.slice(i + 1)) };
});
if (!Number.isInteger(listenPort) || upstreams.length === 0 || upstreams.some((u) => !u.host || !(u.port > 0))) {
  process.stderr.write('usage: naive-proxy.ts <listen-port> <host:port> [<host:port> ...]\n');
  process.exit(1);
}

let next = 0;
const server = net.createServer((c) => {
  const u = upstreams[next++ % upstreams.length]!;
  const s = net.connect(u.port, u.host);
  c.pipe(s);
  s.pipe(c);
  c.on('error', () => s.destroy());
  s.on('error', () => c.destroy());
});
server.on('error', (err) => {
  process.stderr.write(`naive-proxy: ${err.message}\n`);
  process.exit(2);
});
server.listen({ port: listenPort, host: '127.0.0.1', backlog: 4096 });
process.on('SIGTERM', () => process.exit(0));
