/**
 * One registry of everything the bench must undo (child processes, temp dirs), run on normal exit, on an error
 * and on Ctrl-C, so a failed or interrupted run never leaves an HAProxy or a licd listening behind it.
 */
export type CleanupFn = () => void | Promise<void>;

export class Cleanup {
  #entries = new Map<number, { name: string; fn: CleanupFn }>();
  #next = 0;
  #running: Promise<void> | null = null;

  /** True once runAll() has begun: nothing new may be started. */
  get closing(): boolean {
    return this.#running !== null;
  }

  /**
   * Registers `fn`; the returned function unregisters it (for a resource already released in order). A resource
   * registered while the registry is already closing (a child started by a loop that has not yet seen Ctrl-C) is
   * released at once rather than leaked.
   */
  add(name: string, fn: CleanupFn): () => void {
    if (this.#running) {
      void this.#running.then(async () => {
        try {
          await fn();
        } catch {
          /* best effort: the run is ending */
        }
      });
      return () => {};
    }
    const id = this.#next++;
    this.#entries.set(id, { name, fn });
    return () => {
      this.#entries.delete(id);
    };
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Runs every entry, newest first (children before the temp dir that holds their files); never throws. */
  runAll(): Promise<void> {
    this.#running ??= (async () => {
      const entries = [...this.#entries.values()].reverse();
      this.#entries.clear();
      for (const e of entries) {
        try {
          await e.fn();
        } catch (err) {
          process.stderr.write(`bench: cleanup of ${e.name} failed: ${(err as Error).message}\n`);
        }
      }
    })();
    return this.#running;
  }

  /** Ctrl-C, SIGTERM and a stray exception all end in runAll(), then exit with a conventional code. */
  installHandlers(): void {
    const onSignal = (sig: NodeJS.Signals) => {
      process.stderr.write(`\nbench: ${sig}, stopping every child process...\n`);
      void this.runAll().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    process.once('uncaughtException', (err) => {
      process.stderr.write(`bench: ${err.stack ?? String(err)}\n`);
      void this.runAll().finally(() => process.exit(2));
    });
    process.once('unhandledRejection', (err) => {
      process.stderr.write(`bench: ${err instanceof Error ? err.stack : String(err)}\n`);
      void this.runAll().finally(() => process.exit(2));
    });
  }
}

export const cleanup = new Cleanup();
