/**
 * The plain TCP backend for the bulk and accept workloads, run as its own process:
 *   node --import tsx bench/lib/sink-server.ts <port>
 * The first byte a client sends picks the mode:
 *   'S' sink:   counts every following byte and reports the running total as "<n>\n" every 10ms while it grows,
 *               so the client knows when its last byte arrived without relying on half-close through the proxy;
 *   'R' source: sends 64 KiB blocks with back-pressure until the client goes away;
 *   'E' echo:   echoes every following byte (the accept workload's tiny exchange).
 */
import { createServer, type Socket } from 'node:net';

const BLOCK = Buffer.alloc(64 * 1024, 0x61);
const ACK_EVERY_MS = 10;

function onConnection(sock: Socket): void {
  sock.setNoDelay(true);
  sock.on('error', () => sock.destroy());
  sock.once('data', (first: Buffer) => {
    const mode = first[0];
    const rest = first.subarray(1);
    if (mode === 0x53 /* S */) sink(sock, rest.length);
    else if (mode === 0x52 /* R */) source(sock);
    else if (mode === 0x45 /* E */) echo(sock, rest);
    else sock.destroy();
  });
}

function sink(sock: Socket, initial: number): void {
  let count = initial;
  let reported = -1;
  sock.on('data', (chunk: Buffer) => {
    count += chunk.length;
  });
  const timer = setInterval(() => {
    if (count !== reported && sock.writable) {
      reported = count;
      sock.write(`${count}\n`);
    }
  }, ACK_EVERY_MS);
  sock.once('close', () => clearInterval(timer));
  sock.once('end', () => sock.end());
}

function source(sock: Socket): void {
  const pump = (): void => {
    // Bounded per turn so one connection cannot starve the event loop.
    for (let i = 0; i < 64 && !sock.destroyed; i++) if (!sock.write(BLOCK)) return;
    if (!sock.destroyed) setImmediate(pump);
  };
  sock.on('drain', pump);
  sock.once('end', () => sock.destroy());
  sock.resume();
  pump();
}

function echo(sock: Socket, rest: Buffer): void {
  if (rest.length > 0) sock.write(rest);
  sock.pipe(sock);
}

const port = Number(process.argv[2]);
const host = process.argv[3] ?? '127.0.0.1';
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write('usage: sink-server.ts <port> [host]\n');
  process.exit(1);
}
const server = createServer(onConnection);
server.maxConnections = 15_000;
server.on('error', (err) => {
  process.stderr.write(`sink-server: ${err.message}\n`);
  process.exit(2);
});
server.listen({ port, host, backlog: 4096 }, () => process.stdout.write(`sink-server listening on ${host}:${port}\n`));
process.on('SIGTERM', () => process.exit(0));
