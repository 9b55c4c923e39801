/**
 * The two license servers of a failover measurement: `primary` and `secondary`, licd child processes on fixed
 * free ports (HAProxy's config needs the numbers), with seats enough that nothing is ever denied. The primary is
 * the one the bench kills (SIGKILL) or hangs (SIGSTOP); stop() lets a stopped one run again before ending it.
 */
import { spawnLicdChild } from '../backends.ts';
import { waitForPort, type ChildHandle } from '../child.ts';
import { cleanup } from '../cleanup.ts';

export const FEATURE = 'LS-DYNA';

export interface LicenseServer {
  name: 'primary' | 'secondary';
  port: number;
  child: ChildHandle;
}

export interface LicensePair {
  primary: LicenseServer;
  secondary: LicenseServer;
  /** SIGSTOP the primary (remembered, so stop() continues it first). */
  hangPrimary(): void;
  killPrimary(): Promise<void>;
  failure(): string | null;
  stop(): Promise<void>;
}

async function startOne(name: 'primary' | 'secondary', dir: string): Promise<LicenseServer> {
  const { child, license } = await spawnLicdChild(dir, name, { features: [{ name: FEATURE, count: 10_000_000 }] });
  return { name, port: license, child };
}

export async function startLicensePair(dir: string): Promise<LicensePair> {
  const primary = await startOne('primary', dir);
  let stopped = false;
  // Registered after the child's own entry, so it runs first (newest first): a stopped licd cannot exit on SIGTERM.
  const unregister = cleanup.add('SIGCONT primary', () => {
    if (stopped) primary.child.process.kill('SIGCONT');
  });
  const secondary = await startOne('secondary', dir);
  const pair: LicensePair = {
    primary,
    secondary,
    hangPrimary() {
      stopped = true;
      primary.child.process.kill('SIGSTOP');
    },
    async killPrimary() {
      const gone = new Promise((r) => primary.child.process.once('exit', r));
      primary.child.process.kill('SIGKILL');
      await gone;
    },
    failure() {
      for (const s of [primary, secondary]) {
        const e = s.child.exited;
        if (e && !(s === primary && e.signal === 'SIGKILL')) return `licd ${s.name} exited (${e.code ?? e.signal}):\n${s.child.logTail()}`;
      }
      return null;
    },
    async stop() {
      if (stopped) primary.child.process.kill('SIGCONT');
      stopped = false;
      unregister();
      await Promise.all([primary.child.stop(), secondary.child.stop()]);
    },
  };
  try {
    await waitForPort('127.0.0.1', primary.port, primary.child);
    await waitForPort('127.0.0.1', secondary.port, secondary.child);
  } catch (err) {
    await pair.stop();
    throw err;
  }
  return pair;
}
