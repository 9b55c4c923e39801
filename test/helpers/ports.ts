/**
 * Free loopback ports for configuration files, where a frontend may not listen on port 0. Ports are drawn from
 * 10000-19999, below Linux's ephemeral range (32768-60999), so the kernel never hands them to an outgoing
 * connection, and below the fixed ports of the example licd files (conf/examples/licd: 20000-31999), which tests
 * start while others run; each is checked free by listening on it, and the listeners are closed before returning.
 */
import { createServer, type Server } from 'node:net';

export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: Server[] = [];
  const ports: number[] = [];
  try {
    for (let tries = 0; ports.length < n; tries++) {
      if (tries > 1_000) throw new Error(`no ${n} free ports found in 10000-19999`);
      const port = 10_000 + Math.floor(Math.random() * 10_000);
      if (ports.includes(port)) continue;
      const srv = createServer();
      const ok = await new Promise<boolean>((resolve) => {
        srv.once('error', () => resolve(false));
        srv.listen({ host, port, exclusive: true }, () => resolve(true));
      });
      if (!ok) continue;
      servers.push(srv);
      ports.push(port);
    }
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
  return ports;
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return (await freePorts(1, host))[0]!;
}

/**
 * A configuration text with each frontend's `listen: 127.0.0.1:0` (quoted or not) given a free port, since a
 * frontend may not listen on port 0. A frontend's line is one that names it (`- { name: f, listen: ... }`) or is
 * indented under a list item (`    listen: ...`); the stats listener (`  listen:` under `stats:`) keeps port 0.
 */
export async function freeFrontendPorts(yaml: string): Promise<string> {
  const lines = yaml.split('\n');
  const at = /(listen: "?127\.0\.0\.1:)0\b/;
  const targets = lines.map((l, i) => (at.test(l) && (/\bname:/.test(l) || /^ {4,}listen:/.test(l)) ? i : -1)).filter((i) => i >= 0);
  const ports = await freePorts(targets.length);
  targets.forEach((i, k) => (lines[i] = lines[i]!.replace(at, `$1${ports[k]}`)));
  return lines.join('\n');
}
