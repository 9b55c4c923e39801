/**
 * Asks a licd directly (not through the proxy) how many seats of a feature are in use: `STATUS json` answers one
 * JSON line (SPEC 4.1), several MB with thousands of sessions, read here without a line-length limit.
 */
import { connect } from 'node:net';

export interface SeatUse {
  inUse: number;
  issued: number;
  /** Open license-port connections as licd counts them (this query's own included). */
  connections: number;
}

export function seatUse(port: number, feature: string, timeoutMs = 10_000): Promise<SeatUse> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => done(new Error(`STATUS json on ${port}: no answer within ${timeoutMs}ms`)), timeoutMs);
    function done(err: Error | null, v?: SeatUse): void {
      clearTimeout(timer);
      s.destroy();
      if (err) reject(err);
      else resolve(v!);
    }
    s.once('connect', () => s.write('STATUS json\n'));
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      if (!c.includes(10)) return;
      const text = Buffer.concat(chunks).toString('utf8');
      const line = text.slice(0, text.indexOf('\n'));
      try {
        const j = JSON.parse(line) as { features: { name: string; inUse: number; issued: number }[]; connections: { license: number } };
        const f = j.features.find((x) => x.name === feature);
        if (!f) return done(new Error(`licd on ${port} has no feature ${feature}`));
        done(null, { inUse: f.inUse, issued: f.issued, connections: j.connections.license });
      } catch (err) {
        done(new Error(`STATUS json on ${port}: ${(err as Error).message}: ${line.slice(0, 120)}`));
      }
    });
    s.once('error', (err) => done(err));
    s.once('close', () => done(new Error(`licd on ${port} closed before answering STATUS json`)));
  });
}
