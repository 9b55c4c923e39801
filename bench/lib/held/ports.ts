import { createServer } from 'node:net';

/**
 * A free loopback port in [lo, hi] (the bench's assigned range), tried in a random order and never handed out
 * twice by this process. Released before use, as configs need the number up front.
 */
const handedOut = new Set<number>();
export async function freePortIn(lo: number, hi: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = lo + Math.floor(Math.random() * (hi - lo + 1));
    if (handedOut.has(port)) continue;
    const ok = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (ok) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free loopback port in ${lo}-${hi}`);
}
