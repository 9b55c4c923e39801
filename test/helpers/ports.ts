/**
 * Free loopback ports for configuration files, where a frontend may not listen on port 0. Ports are drawn from
 * 10000-19999, below Linux's ephemeral range (32768-60999), so the kernel never hands them to an outgoing
 * connection, and below the fixed ports of the example licd files (conf/examples/licd: 20000-31999), which tests
 * start while others run; each is checked free by listening on it, and the listeners are closed before returning.
 *
 * Test files run side by side in several processes, and a port handed out here is only bound a moment later (by a
 * licd child, a frontend): two processes drawing the same port in that moment would both get it. So each port
 * handed out is also reserved for RESERVE_MS by a file created exclusively in a folder every test process shares;
 * the others skip it while the reservation is fresh.
 */
import { mkdirSync, openSync, closeSync, statSync, utimesSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const RESERVATIONS = join(tmpdir(), 'licproxy-test-ports');
const RESERVE_MS = 120_000;
mkdirSync(RESERVATIONS, { recursive: true });

/** True when this process now holds `port`'s reservation (new, or taken over from a stale one). */
function reserve(port: number): boolean {
  const file = join(RESERVATIONS, String(port));
  try {
    closeSync(openSync(file, 'wx'));
    return true;
  } catch {
    try {
      if (Date.now() - statSync(file).mtimeMs < RESERVE_MS) return false;
      const now = new Date();
      utimesSync(file, now, now);
      return true;
    } catch {
      return false;
    }
  }
}

export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: Server[] = [];
  const ports: number[] = [];
  try {
    for (let tries = 0; ports.length < n; tries++) {
      if (tries > 1_000) throw new Error(`no ${n} free ports found in 10000-19999`);
      const port = 10_000 + Math.floor(Math.random() * 10_000);
      if (ports.includes(port) || !reserve(port)) continue;
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
