/**
 * The bench's side of one loader child: starts it, and turns its IPC answers into promises, each with a deadline
 * (a loader that hangs or dies fails the request with its log tail instead of stalling the bench).
 */
import { join } from 'node:path';
import { startChild, type ChildHandle } from '../child.ts';
import { REPO, tsArgs } from '../node-script.ts';
import type { FromLoader, LoaderReport, OpenRequest, ToLoader } from './messages.ts';

type Answer = Exclude<FromLoader, { ready: true } | { progress: unknown }>;

export class Loader {
  readonly child: ChildHandle;
  readonly name: string;
  /** Connections set up so far in the current open batch (from progress messages). */
  progress = 0;
  #nextId = 1;
  #waiting = new Map<number, { resolve: (m: Answer) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  #ready: Promise<void>;

  constructor(name: string, dir: string) {
    this.name = name;
    this.child = startChild({
      name,
      command: process.execPath,
      args: tsArgs('bench/lib/held/loader.ts'),
      cwd: REPO,
      logFile: join(dir, `${name}.log`),
      ipc: true,
    });
    let readyResolve!: () => void;
    this.#ready = new Promise((r) => (readyResolve = r));
    this.child.process.on('message', (m: FromLoader) => {
      if ('ready' in m) return readyResolve();
      if ('progress' in m) {
        this.progress = m.progress.done;
        return;
      }
      const w = this.#waiting.get(m.id);
      if (!w) return;
      this.#waiting.delete(m.id);
      clearTimeout(w.timer);
      if ('error' in m) w.reject(new Error(`${name}: ${m.error}`));
      else w.resolve(m);
    });
    this.child.process.once('exit', () => {
      for (const w of this.#waiting.values()) {
        clearTimeout(w.timer);
        w.reject(new Error(`${name} exited (${this.child.exited?.code ?? this.child.exited?.signal}):\n${this.child.logTail()}`));
      }
      this.#waiting.clear();
    });
  }

  async ready(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`${this.name} not ready within ${timeoutMs}ms:\n${this.child.logTail()}`)), timeoutMs)));
    try {
      await Promise.race([this.#ready, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  #request(body: Omit<ToLoader, 'id'>, timeoutMs: number, what: string): Promise<Answer> {
    if (this.child.exited) return Promise.reject(new Error(`${this.name} is gone:\n${this.child.logTail()}`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`${this.name}: no answer to ${what} within ${timeoutMs}ms`));
      }, timeoutMs);
      this.#waiting.set(id, { resolve, reject, timer });
      this.child.process.send({ id, ...body } as ToLoader);
    });
  }

  async open(req: OpenRequest, timeoutMs: number): Promise<{ held: number; failed: number; ms: number }> {
    this.progress = 0;
    const a = await this.#request({ open: req }, timeoutMs, `open ${req.count}`);
    if (!('opened' in a)) throw new Error(`${this.name}: unexpected answer to open`);
    return a.opened;
  }

  async mark(timeoutMs = 10_000): Promise<void> {
    await this.#request({ mark: true }, timeoutMs, 'mark');
  }

  async report(timeoutMs = 10_000): Promise<LoaderReport> {
    const a = await this.#request({ report: true }, timeoutMs, 'report');
    if (!('report' in a)) throw new Error(`${this.name}: unexpected answer to report`);
    return a.report;
  }

  async close(timeoutMs = 10_000): Promise<void> {
    await this.#request({ close: true }, timeoutMs, 'close').catch(() => {});
    await this.child.stop(2_000);
  }
}
