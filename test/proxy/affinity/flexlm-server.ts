/**
 * A FlexLM-shaped test server: an `lmgrd` port that answers a client's `HELLO id=<n>` with the vendor daemon's
 * port (`VENDOR <port>`) and remembers the client, and a `vendor` port that answers the same `HELLO id=<n>` with
 * `OK` only if that client came through this server's lmgrd first (`FAIL` otherwise), as a real vendor daemon
 * knows only the clients its own lmgrd referred.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';

export interface FlexServer {
  name: string;
  ports: { lmgrd: number; vendor: number };
  /** Client ids seen on the lmgrd port. */
  seen: Set<string>;
  ok: number;
  fail: number;
  close(): Promise<void>;
}

function onLines(s: Socket, fn: (line: string) => void): void {
  let buf = '';
  s.setEncoding('utf8');
  s.on('error', () => {});
  s.on('data', (d: string) => {
    buf += d;
    if (buf.length > 4096) return void s.destroy();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      fn(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
}

async function listen(srv: Server): Promise<number> {
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return (srv.address() as { port: number }).port;
}

export async function startFlexServer(name: string): Promise<FlexServer> {
  const seen = new Set<string>();
  const sockets = new Set<Socket>();
  const track = (s: Socket): void => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };
  let vendorPort = 0;
  const lmgrd = createServer((s) => {
    track(s);
    onLines(s, (line) => {
      const id = /^HELLO id=(\S+)$/.exec(line)?.[1];
      if (id === undefined) return void s.write('ERR BAD_COMMAND\n');
      seen.add(id);
      s.write(`VENDOR ${vendorPort}\n`);
    });
  });
  const fx: FlexServer = {
    name,
    ports: { lmgrd: 0, vendor: 0 },
    seen,
    ok: 0,
    fail: 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise((r) => lmgrd.close(r)), new Promise((r) => vendor.close(r))]);
    },
  };
  const vendor = createServer((s) => {
    track(s);
    onLines(s, (line) => {
      const id = /^HELLO id=(\S+)$/.exec(line)?.[1];
      if (id !== undefined && seen.has(id)) {
        fx.ok++;
        s.write('OK\n');
      } else {
        fx.fail++;
        s.write('FAIL\n');
      }
    });
  });
  fx.ports.lmgrd = await listen(lmgrd);
  vendorPort = fx.ports.vendor = await listen(vendor);
  return fx;
}
