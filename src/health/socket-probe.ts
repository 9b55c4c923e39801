/**
 * The socket work shared by the socket-based checks: connect, optionally send a request, read until the answer
 * is complete. Every path destroys the socket, and the abort signal (timeout, monitor stopped) ends it at once.
 */
import net from 'node:net';
import { CheckFailure } from './check.ts';

export interface ConverseOptions {
  host: string;
  port: number;
  signal: AbortSignal;
  /** Written once connected. */
  send?: string | null;
  /** Called with the whole answer so far after each chunk; true = complete. Absent: complete once connected. */
  done?: (answer: string) => boolean;
  /** The answer may not grow beyond this many characters (a misbehaving server cannot make us buffer). */
  maxChars?: number;
  /** Reason when the server closes before `done` says complete. */
  closedReason?: string;
}

const DEFAULT_MAX_CHARS = 64 * 1024;

/** Resolves with the answer (empty when `done` is absent); rejects with a CheckFailure naming what went wrong. */
export function converse(opts: ConverseOptions): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    if (opts.signal.aborted) {
      reject(opts.signal.reason);
      return;
    }
    const max = opts.maxChars ?? DEFAULT_MAX_CHARS;
    let answer = '';
    let settled = false;
    const socket = net.connect({ host: opts.host, port: opts.port });

    const finish = (err: unknown, value?: string): void => {
      if (settled) return;
      settled = true;
      opts.signal.removeEventListener('abort', onAbort);
      socket.destroy();
      if (err === undefined) resolve(value ?? '');
      else reject(err);
    };
    const onAbort = (): void => finish(opts.signal.reason);
    opts.signal.addEventListener('abort', onAbort, { once: true });

    socket.once('connect', () => {
      if (!opts.done) {
        finish(undefined, '');
        return;
      }
      socket.setNoDelay(true);
      if (opts.send) socket.write(opts.send);
    });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      answer += chunk;
      if (opts.done!(answer)) finish(undefined, answer);
      else if (answer.length > max) finish(new CheckFailure(`answer longer than ${max} bytes`));
    });
    // After our own destroy() 'close' still fires: build no Error for it (a pass must stay allocation-light).
    const onClosed = (): void => {
      if (!settled) finish(new CheckFailure(opts.closedReason ?? 'closed by server'));
    };
    socket.once('end', onClosed);
    socket.once('close', onClosed);
    socket.on('error', (err) => {
      if (!settled) finish(new CheckFailure(socketReason(err)));
    });
  });
}

/** Short operator wording for socket errors; the code itself for anything unusual. */
export function socketReason(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connect refused';
    case 'ECONNRESET':
      return 'connection reset';
    case 'EPIPE':
      return 'connection closed by server';
    case 'EHOSTUNREACH':
      return 'host unreachable';
    case 'ENETUNREACH':
      return 'network unreachable';
    case 'ETIMEDOUT':
      return 'connect timed out';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found';
    case 'EMFILE':
    case 'ENFILE':
      return 'out of file descriptors';
    default:
      return err.code ?? err.message;
  }
}

/**
 * Connects to every named port at once and resolves when all accepted. When the check covers more than one port
 * (`label`), the reason names the port that failed (`tokens: connect refused`): the whole server is one unit of
 * health, and the operator needs to know which part of it is broken.
 */
export async function probePorts(
  host: string,
  ports: Readonly<Record<string, number>>,
  names: readonly string[],
  signal: AbortSignal,
  label = names.length > 1,
): Promise<void> {
  await Promise.all(
    names.map((name) => {
      const port = ports[name];
      if (port === undefined) return Promise.reject(new CheckFailure(`no port named ${name}`));
      const probe = converse({ host, port, signal });
      return label ? labelFailure(name, probe, signal) : probe;
    }),
  );
}

/** Prefixes a CheckFailure's reason with the port name; a timeout or cancel stays as it is. */
export async function labelFailure<T>(name: string, work: Promise<T>, signal: AbortSignal): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof CheckFailure && !signal.aborted) throw new CheckFailure(`${name}: ${err.message}`);
    throw err;
  }
}
