/**
 * Reads the first line a client sends, bounded in size and time, before any server is chosen (affinity by
 * handle). Every byte read is handed back so the forwarder sends the line to the server unchanged.
 */
import type { Socket } from 'node:net';

export const MAX_FIRST_LINE = 4096;

export type FirstLineError = 'LINE_TOO_LONG' | 'TIMEOUT' | 'CLOSED';

export type FirstLineCallback = (err: FirstLineError | null, head: Buffer, line: string) => void;

/**
 * Calls `cb` once: with the bytes received so far and the first line (without `\r\n`), or with an error. The
 * socket is paused before `cb`, so nothing is lost while the caller connects to the server.
 */
export function readFirstLine(socket: Socket, timeoutMs: number, cb: FirstLineCallback, maxBytes = MAX_FIRST_LINE): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  const finish = (err: FirstLineError | null, line: string) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('close', onEnd);
    socket.pause();
    cb(err, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), line);
  };
  const onData = (chunk: Buffer) => {
    const nl = chunk.indexOf(10);
    chunks.push(chunk);
    if (nl !== -1) {
      if (size + nl > maxBytes) return finish('LINE_TOO_LONG', '');
      const all = chunks.length === 1 ? chunk : Buffer.concat(chunks);
      const end = size + nl;
      size += chunk.length;
      const line = all.toString('utf8', 0, end > 0 && all[end - 1] === 13 ? end - 1 : end);
      return finish(null, line);
    }
    size += chunk.length;
    if (size > maxBytes) finish('LINE_TOO_LONG', '');
  };
  const onEnd = () => finish('CLOSED', '');
  const timer = setTimeout(() => finish('TIMEOUT', ''), timeoutMs);
  socket.on('data', onData);
  socket.once('end', onEnd);
  socket.once('close', onEnd);
}

const HANDLE_VERBS = new Set(['TOKENS', 'RESUME', 'CHECKIN']);

/**
 * The server name carried by a licd handle in a line such as `TOKENS primary.1a 8` (handles are
 * `<server>.<id>`), or undefined when the line carries no handle.
 */
export function serverOfHandleLine(line: string): string | undefined {
  const parts = line.trim().split(/\s+/);
  if (parts.length < 2 || !HANDLE_VERBS.has(parts[0]!.toUpperCase())) return undefined;
  const handle = parts[1]!;
  const dot = handle.lastIndexOf('.');
  if (dot <= 0 || dot === handle.length - 1) return undefined;
  return handle.slice(0, dot);
}
