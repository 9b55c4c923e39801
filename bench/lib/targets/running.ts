import type { ChildHandle } from '../child.ts';
import type { RunningTarget } from './target.ts';

/** A RunningTarget backed by one child process (plus optional extra teardown). */
export function childTarget(name: string, port: number, child: ChildHandle, onStop?: () => void | Promise<void>): RunningTarget {
  return {
    name,
    host: '127.0.0.1',
    port,
    pid: child.pid,
    failure() {
      const e = child.exited;
      return e ? `${name} exited (${e.code ?? e.signal}):\n${child.logTail()}` : null;
    },
    async stop() {
      await onStop?.();
      await child.stop();
    },
  };
}
