/**
 * A relay in front of a licd member that swallows the first GRANTED coming back (kept in `eaten`): the tests of
 * what the balancer does when a master granted but its answer never arrived. After it, the upstream is paused and
 * `onGranted` decides (kill the master, cut the connection, or nothing: nothing more passes).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

/** Forwards to `target`; the first GRANTED line coming back is swallowed and handed to `onGranted` instead. */
export class GrantEater {
  readonly server: Server;
  port = 0;
  eaten: string | null = null;
  readonly #sockets = new Set<Socket>();

  constructor(
    readonly target: number,
    readonly onGranted: (client: Socket, upstream: Socket) => void = () => {},
  ) {
    this.server = createServer((s) => this.#accept(s));
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen({ host: '127.0.0.1', port: 0 }, () => r()));
    this.port = (this.server.address() as { port: number }).port;
  }

  #accept(s: Socket): void {
    const u = connect({ host: '127.0.0.1', port: this.target });
    for (const x of [s, u]) {
      this.#sockets.add(x);
      x.on('error', () => {});
      x.on('close', () => {
        this.#sockets.delete(x);
        if (this.eaten === null || x === s) u.destroy();
        s.destroy();
      });
    }
    s.pipe(u);
    u.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      const m = /(^|\n)(GRANTED [^\n]*)\n/.exec(text);
      if (m && this.eaten === null) {
        this.eaten = m[2]!;
        u.pause();
        this.onGranted(s, u);
        return;
      }
      if (this.eaten === null || !s.destroyed) s.write(chunk);
    });
  }

  close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}
