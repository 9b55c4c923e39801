/**
 * A TCP socket bound on loopback and held by the test process without accepting on it, as systemd holds the
 * sockets of a socket unit: passed to licproxy (spawnLicproxy's `passFds`), which listens on it. The socket stays
 * open while licproxy dies and restarts; clients connecting meanwhile wait in its backlog.
 *
 * Node's net.Server accepts as soon as it listens, so the socket is a bare libuv TCP handle (tcp_wrap), bound
 * and never listened on here: licproxy's listen(2) puts it in LISTEN state, which outlives licproxy.
 */
export interface HeldSocket {
  readonly fd: number;
  readonly port: number;
  close(): void;
}

interface BareTcp {
  bind(host: string, port: number): number;
  getsockname(out: { port?: number }): number;
  close(): void;
  readonly fd: number;
}

export function holdSocket(host = '127.0.0.1'): HeldSocket {
  const tcp = (process as unknown as { binding(name: string): { TCP: new (type: number) => BareTcp; constants: { SERVER: number } } }).binding('tcp_wrap');
  const h = new tcp.TCP(tcp.constants.SERVER);
  const err = h.bind(host, 0);
  if (err !== 0) throw new Error(`bind ${host}:0 failed (libuv error ${err})`);
  const out: { port?: number } = {};
  h.getsockname(out);
  let closed = false;
  return {
    fd: h.fd,
    port: out.port!,
    close: () => {
      if (closed) return;
      closed = true;
      h.close();
    },
  };
}
