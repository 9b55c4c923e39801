import { createServer } from 'node:net';

const handedOut = new Set<number>();

/**
 * A free loopback port for a config file that needs a number up front (HAProxy, NGINX and licd configs cannot say
 * "port 0 and tell me"). The port is released before use, so it is remembered to never hand it out twice.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, host, () => {
        const addr = srv.address();
        const p = typeof addr === 'object' && addr ? addr.port : 0;
        srv.close(() => resolve(p));
      });
    });
    if (port && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('could not find a free port on ' + host);
}
