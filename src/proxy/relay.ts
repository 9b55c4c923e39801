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
import type { Socket } from 'node:net';
import { setSocketOnread } from './node-internals.ts';

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
 * Switches an accepted socket that has not read anything yet to the shared buffer (net.Server cannot pass it the
 * `onread` option; node-internals.ts sets it); false: it stays on streams ('data' events), which behave the same.
 */
export function useSharedReadBuffer(s: Socket, callback: ReadCallback): boolean {
  return setSocketOnread(s, SHARED, callback as (n: number, buf: Uint8Array) => boolean, nextReadBuffer);
}
