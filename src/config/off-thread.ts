/**
 * Reads and validates licproxy.yaml on a worker thread with its own heap limit and a deadline, so a file that is
 * slow or huge to parse never stalls the thread that forwards traffic and answers /health, and cannot take the
 * process's memory: the worker is stopped and the file refused with one line.
 */
import { Worker } from 'node:worker_threads';
import { ConfigError, LpxError, type ConfigIssue, type ErrorCode } from '../common/errors.ts';
import type { ProxyConfig } from './proxy-config.ts';
import { deepFreeze } from './yaml-file.ts';

/** A file at the size limit parses in about 2 s in about 150 MB; these leave room for a busy machine. */
export const PARSE_HEAP_MB = 512;
export const PARSE_DEADLINE_MS = 30_000;

export type ParseAnswer =
  | { ok: true; config: ProxyConfig }
  | { ok: false; issues: ConfigIssue[] }
  | { ok: false; code: ErrorCode; message: string };

const FROM_SOURCES = import.meta.url.endsWith('.ts');

/**
 * The worker's entry. Compiled (dist/), the compiled file beside this one. From the TypeScript sources (tests,
 * development), tsx is registered in the worker first (a loader registered in this thread does not reach
 * workers): a data: URL module may import absolute URLs, so both are resolved here.
 */
function workerEntry(): URL {
  if (!FROM_SOURCES) return new URL('./parse-worker.js', import.meta.url);
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./parse-worker.ts', import.meta.url).href;
  const code = `import { register } from ${JSON.stringify(tsx)};\nregister();\nawait import(${JSON.stringify(entry)});\n`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

/** The worker kept between reads (per heap limit), and the read in progress: one at a time. */
const idle = new Map<number, Worker>();
let queue: Promise<unknown> = Promise.resolve();

export function loadProxyConfigOffThread(file: string, opts: { heapMb?: number; deadlineMs?: number } = {}): Promise<ProxyConfig> {
  const next = queue.then(() => readOnce(file, opts.heapMb ?? PARSE_HEAP_MB, opts.deadlineMs ?? PARSE_DEADLINE_MS));
  queue = next.catch(() => {});
  return next;
}

function readOnce(file: string, heapMb: number, deadlineMs: number): Promise<ProxyConfig> {
  return new Promise((resolve, reject) => {
    let worker = idle.get(heapMb);
    idle.delete(heapMb);
    worker ??= new Worker(workerEntry(), { resourceLimits: { maxOldGenerationSizeMb: heapMb }, stdout: true, stderr: true });
    worker.ref();
    let settled = false;
    const settle = (keep: boolean, fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      worker.off('message', onMessage).off('error', onError).off('exit', onExit);
      if (keep) {
        // Idle, it does not keep the process alive.
        worker.unref();
        idle.set(heapMb, worker);
      } else {
        void worker.terminate();
      }
      fn();
    };
    const fail = (message: string) => (): void => reject(new LpxError('LPX_ERR_CONFIG', `${file}: ${message}`));
    const timer = setTimeout(() => settle(false, fail(`reading the configuration took more than ${deadlineMs / 1000} s: not applied`)), deadlineMs);
    const onMessage = (a: ParseAnswer): void =>
      settle(true, () => {
        if (a.ok) resolve(deepFreeze(a.config));
        else if ('issues' in a) reject(new ConfigError(a.issues));
        else reject(new LpxError(a.code, a.message));
      });
    const onError = (err: Error & { code?: string }): void =>
      settle(
        false,
        fail(
          err.code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? `reading the configuration took more than ${heapMb} MB of memory: not applied`
            : `reading the configuration failed: ${err.message.split('\n')[0]}`,
        ),
      );
    const onExit = (code: number): void => settle(false, fail(`reading the configuration stopped (exit ${code}): not applied`));
    worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    worker.postMessage(file);
  });
}
