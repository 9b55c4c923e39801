/**
 * A child process of the idle workload that opens and holds its share of the idle connections, so the 9,500
 * client sockets are spread over several processes (each under the 20,000 fd limit).
 * Protocol over IPC: parent sends { open: { host, port, count } } -> child answers { opened, failed };
 * parent sends { close: true } -> child closes them and answers { closed: true }. A lost parent ends it.
 */
import { openIdle, type IdleSet } from '../licload.ts';

interface OpenMsg {
  open?: { host: string; port: number; count: number; timeoutMs: number; feature?: string; user?: string };
  close?: boolean;
}

if (!process.send) {
  process.stderr.write('idle-holder.ts runs as a child of bench/run.ts (needs an IPC channel)\n');
  process.exit(1);
}
const send = (m: unknown) => process.send!(m);
let set: IdleSet | null = null;

process.on('message', (m: OpenMsg) => {
  void (async () => {
    if (m.open) {
      set = await openIdle({ host: m.open.host, port: m.open.port }, m.open.count, {
        batch: 200,
        timeoutMs: m.open.timeoutMs,
        user: m.open.user ?? 'idle',
        ...(m.open.feature !== undefined ? { feature: m.open.feature } : {}),
      });
      send({ opened: set.open, failed: set.failed });
    } else if (m.close) {
      await set?.close();
      send({ closed: true });
      process.disconnect();
    }
  })().catch((err: Error) => send({ error: err.message }));
});
process.on('disconnect', () => process.exit(0));
send({ ready: true });
