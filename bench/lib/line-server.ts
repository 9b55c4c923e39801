/**
 * The light upstream of bench/light-upstream.ts: a minimal line server, much cheaper than licd, so that a proxy in
 * front of it is not hidden behind the backend's own cost. Every `\n`-terminated line it reads (`CHECKOUT x`,
 * `HELLO ...`, anything) is answered with `OK h123\n`; a client's FIN is answered with a close.
 *
 *   node --import tsx bench/lib/line-server.ts <port> [<port>...]   # prints "listening <port>..." when ready
 */
import { createServer, type Socket } from 'node:net';

const ANSWER = Buffer.from('OK h123\n');
const NL = 10;

/** Answers each complete line with ANSWER (a partial line waits for its end, counted across reads). */
function serve(s: Socket): void {
  s.setNoDelay(true);
  s.on('data', (d: Buffer) => {
    let lines = 0;
    for (let i = d.indexOf(NL); i >= 0; i = d.indexOf(NL, i + 1)) lines++;
    if (lines === 1) s.write(ANSWER);
    else if (lines > 1) s.write(Buffer.concat(Array.from({ length: lines }, () => ANSWER)));
  });
  s.on('error', () => s.destroy());
}

export function startLineServer(port: number): Promise<number> {
  const srv = createServer(serve);
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => {
      const a = srv.address();
      resolve(typeof a === 'object' && a !== null ? a.port : port);
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const ports = process.argv.slice(2).map(Number);
  if (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p < 0 || p > 65535)) {
    process.stderr.write('usage: line-server.ts <port> [<port>...]\n');
    process.exit(2);
  }
  const bound = await Promise.all(ports.map(startLineServer));
  process.stdout.write(`listening ${bound.join(' ')}\n`);
  process.on('disconnect', () => process.exit(0));
}
