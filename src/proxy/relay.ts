/**
 * Reading into one shared buffer instead of a fresh one per read (the `onread` option of `net.Socket`).
 *
 * Node's default read path allocates a 64 KiB ArrayBuffer for every read, shrinks it to the bytes read and wraps it
 * in a stream chunk. In a process with a large heap that external memory drives frequent garbage collections:
 * measured on the bulk workload, licproxy spent 3x naive's GC time for the same bytes. Here every socket reads into
 * SHARED, and the relay decides what is safe to write:
 *
 * - a read into SHARED is copied before it is written (small reads: a slice of Node's buffer pool), because the
 *   next read of any socket overwrites SHARED, and a write that does not complete at once keeps a reference;
 * - a read that fills more than LARGE bytes switches that socket to a private buffer (a bulk stream): written
 *   without a copy, and reused for the next read only when the write was handed to the kernel completely
 *   (`writableLength === 0`), else replaced; a small read switches it back to SHARED, so an idle connection holds
 *   no read buffer of its own.
 *
 * `onread.buffer` as a function is called after every read, without context, right after the callback of that
 * read: the callback leaves the next buffer for its socket in `next`.
 */
import { Socket } from 'node:net';

const READ_SIZE = 64 * 1024;
const LARGE = 16 * 1024;
const SHARED = Buffer.allocUnsafeSlow(READ_SIZE);
/** The buffer every socket reads into between relays (see above). */
export const sharedReadBuffer: Uint8Array = SHARED;
let next: Uint8Array = SHARED;

/** `onread.buffer`: the buffer the socket whose read was just relayed reads into next. */
export function nextReadBuffer(): Uint8Array {
  const b = next;
  next = SHARED;
  return b;
}

/** What relay() writes to: a net.Socket or a RawSocket. */
export interface RelayTarget {
  write(data: Uint8Array): boolean;
  readonly writableLength: number;
}

/** Writes `n` bytes read into `buf` to `dst`; returns `dst.write()`'s back-pressure answer. */
export function relay(dst: RelayTarget, n: number, buf: Uint8Array): boolean {
  if (buf === SHARED) {
    const copy = Buffer.allocUnsafe(n);
    SHARED.copy(copy, 0, 0, n);
    if (n > LARGE) next = Buffer.allocUnsafeSlow(READ_SIZE);
    return dst.write(copy);
  }
  const ok = dst.write(n === buf.length ? buf : buf.subarray(0, n));
  if (n > LARGE) next = dst.writableLength === 0 ? buf : Buffer.allocUnsafeSlow(READ_SIZE);
  return ok;
}

/** Returns true: back-pressure is applied with `pause()`, which also marks the stream paused. */
export type ReadCallback = (this: never, n: number, buf: Uint8Array) => boolean;

/** For `net.connect`: the public `onread` option. */
export function onreadOption(callback: ReadCallback): { buffer: () => Uint8Array; callback: ReadCallback } {
  return { buffer: nextReadBuffer, callback };
}

/**
 * An accepted socket gets no `onread` option from `net.Server`, so the same three fields the Socket constructor sets
 * for it are set here, before the socket starts reading. They are found by their descriptions on a socket instance;
 * if this Node does not have them, the caller keeps the stream path ('data' events), which behaves the same.
 */
const fields = ((): { buffer: symbol; cb: symbol; gen: symbol } | null => {
  const probe = new Socket();
  const own = Object.getOwnPropertySymbols(probe);
  const find = (d: string): symbol | undefined => own.find((s) => s.description === d);
  const buffer = find('kBuffer');
  const cb = find('kBufferCb');
  const gen = find('kBufferGen');
  probe.destroy();
  return buffer && cb && gen ? { buffer, cb, gen } : null;
})();

interface UserBufferHandle {
  useUserBuffer?(buf: Uint8Array): void;
}

/** Switches an accepted socket that has not read anything yet to the shared buffer; false: it stays on streams. */
export function useSharedReadBuffer(s: Socket, callback: ReadCallback): boolean {
  const h = (s as unknown as { _handle?: UserBufferHandle | null })._handle;
  if (fields === null || !h || typeof h.useUserBuffer !== 'function' || s.readableLength > 0 || s.readableEnded) return false;
  const r = s as unknown as Record<symbol, unknown>;
  if (r[fields.buffer] !== null) return false;
  r[fields.buffer] = SHARED;
  r[fields.cb] = callback;
  r[fields.gen] = nextReadBuffer;
  h.useUserBuffer(SHARED);
  return true;
}
