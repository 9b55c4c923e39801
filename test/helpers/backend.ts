/**
 * Fake backends on real sockets (127.0.0.1, port 0) for proxy tests: echo, sink, resetter, a port that refuses,
 * and a listener that never completes handshakes. Each is closed at teardown.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { ExecutionContext } from 'ava';

export interface Backend {
  port: number;
  server: Server;
  /** Live accepted sockets. */
  sockets: Set<Socket>;
  /** Accepted connections so far. */
  accepted: number;
  close(): Promise<void>;
}

/** A backend running `onSocket` for each accepted connection (allowHalfOpen, so a FIN can be answered). */
export async function startBackend(t: ExecutionContext | null, onSocket: (s: Socket, b: Backend) => void): Promise<Backend> {
  const server = createServer({ allowHalfOpen: true });
  const b: Backend = {
    port: 0,
    server,
    sockets: new Set(),
    accepted: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of b.sockets) s.destroy();
        if (!server.listening) return resolve();
        server.close(() => resolve());
      }),
  };
  server.on('connection', (s) => {
    b.accepted++;
    b.sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => b.sockets.delete(s));
    onSocket(s, b);
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  b.port = (server.address() as AddressInfo).port;
  server.unref();
  t?.teardown(() => b.close());
  return b;
}

/** How far a `pump` got: bytes handed to the socket, and since when its writes are blocked (0: not blocked). */
export interface PumpState {
  sent: number;
  blockedSince: number;
}

/**
 * Writes `chunk` to `s` until `total` bytes are sent, then ends it; a full socket buffer stops the writes until
 * 'drain' (a server at the mercy of back-pressure). `state` tells how far it got.
 */
export function pump(s: Socket, chunk: Buffer, total: number, state: PumpState): void {
  while (state.sent < total) {
    state.sent += chunk.length;
    if (!s.write(chunk)) {
      state.blockedSince = Date.now();
      s.once('drain', () => {
        state.blockedSince = 0;
        pump(s, chunk, total, state);
      });
      return;
    }
  }
  s.end();
}

/** Echoes every byte back; answers the client's FIN with its own. */
export function startEcho(t: ExecutionContext | null): Promise<Backend> {
  return startBackend(t, (s) => s.pipe(s));
}

/** Writes its name and a newline on accept, then echoes (tells a test which server a client landed on). */
export function startNamed(t: ExecutionContext | null, name: string): Promise<Backend> {
  return startBackend(t, (s) => {
    s.write(`${name}\n`);
    s.pipe(s);
  });
}

/** Resets every connection at once. */
export function startResetter(t: ExecutionContext | null): Promise<Backend> {
  return startBackend(t, (s) => s.resetAndDestroy());
}

/** A port on 127.0.0.1 where nothing listens (connects are refused). */
export async function closedPort(): Promise<number> {
  const b = await startBackend(null, () => {});
  const port = b.port;
  await b.close();
  return port;
}

/** Hash and length of everything a socket receives until it ends (for byte-exactness checks). */
export function digestOf(s: Socket): Promise<{ sha256: string; length: number }> {
  return new Promise((resolve) => {
    const h = createHash('sha256');
    let length = 0;
    s.on('data', (c: Buffer) => {
      h.update(c);
      length += c.length;
    });
    s.on('end', () => resolve({ sha256: h.digest('hex'), length }));
  });
}

export interface Blackhole {
  port: number;
  /** Sockets that filled the accept queue. */
  fillers: Socket[];
  close(): void;
}

/**
 * A listening socket whose accept queue is full, so the kernel drops further SYNs and a connect hangs until its
 * timeout. The listener lives in a child process that is SIGSTOPped (a stopped process never accepts), and the
 * queue (backlog 1) is filled by connecting until a connect no longer completes.
 */
export async function startBlackhole(t: ExecutionContext): Promise<Blackhole> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '-e',
      `const s=require('net').createServer();s.listen({host:'127.0.0.1',port:0,backlog:1},()=>{process.stdout.write(String(s.address().port)+'\\n')})`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const fillers: Socket[] = [];
  const close = (): void => {
    for (const f of fillers) f.destroy();
    child.kill('SIGKILL');
  };
  t.teardown(close);
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    child.once('exit', () => reject(new Error('blackhole child exited')));
  });
  child.kill('SIGSTOP');
  for (let i = 0; i < 16; i++) {
    const s = connect({ host: '127.0.0.1', port });
    s.on('error', () => {});
    fillers.push(s);
    const ok = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 300);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    if (!ok) return { port, fillers, close };
  }
  throw new Error('could not fill the accept queue of the blackhole listener');
}
