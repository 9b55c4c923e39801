import { connect } from 'node:net';

export type WitnessResult = 'serving' | 'not-serving';

/**
 * Asks a pair peer, through its license port (the path clients use), whether it serves: `STATUS json` and its
 * `master` flag. A peer that refuses the connection or does not answer within `timeout` (dead, or hung: a stopped
 * process still completes TCP handshakes from its backlog) counts as not serving. Used only by a backup pair,
 * which has no third member to break a tie (PROTOCOL.md "Backup pair").
 */
export function probeWitness(host: string, port: number, timeout: number): Promise<WitnessResult> {
  return new Promise((resolve) => {
    let buf = '';
    let done = false;
    const finish = (r: WitnessResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const socket = connect({ host, port });
    const timer = setTimeout(() => finish('not-serving'), timeout);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write('STATUS json\n'));
    socket.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > 16 * 1024 * 1024) finish('not-serving');
        return;
      }
      try {
        const s = JSON.parse(buf.slice(0, nl)) as { master?: unknown };
        finish(s.master === true ? 'serving' : 'not-serving');
      } catch {
        finish('not-serving');
      }
    });
    socket.on('error', () => finish('not-serving'));
    socket.on('close', () => finish('not-serving'));
  });
}
