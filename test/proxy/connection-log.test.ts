import { Writable } from 'node:stream';
import test from 'ava';
import pino from 'pino';
import { connectionLine, logConnection, type ConnectionLogFields } from '../../src/proxy/connection-log.ts';

const TIME = 1_795_000_000_123;

/** A pino logger set up as createLogger sets it up (pid and worker bindings, name), writing into `lines`. */
function pinoLogger(lines: string[]) {
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  const root = pino({ level: 'info', name: 'licproxy', base: { pid: 4242, worker: 1 }, timestamp: () => `,"time":${TIME}` }, out);
  return root.child({ frontend: 'lic "main"' });
}

const CASES: ConnectionLogFields[] = [
  { client: '10.0.0.1:5000', pool: 'lsdyna', server: 'primary', tier: 0, attempts: 1, queueMs: 0, connectMs: 2, totalMs: 30, bytesIn: 120, bytesOut: 340, end: 'client_close', error: null },
  { client: ':0', pool: 'p', server: null, tier: null, attempts: 0, queueMs: 12, connectMs: -1, totalMs: 10_000, bytesIn: 0, bytesOut: 0, end: 'no_server', error: null },
  { client: '[::1]:1', pool: 'pööl', server: 'sérver "x"\\', tier: 2, attempts: 4, queueMs: 0, connectMs: 3_000, totalMs: 3_001, bytesIn: 1, bytesOut: 2, end: 'connect_failed', error: 'connect timeout after 3000ms\n"quoted"' },
];

test('the hand-formatted connection line is the line pino writes for the same fields', async (t) => {
  for (const f of CASES) {
    const lines: string[] = [];
    const log = pinoLogger(lines);
    logConnection(log, null, TIME, f);
    await new Promise((r) => setImmediate(r));
    const bindings = (log as unknown as Record<symbol, string>)[pino.symbols.chindingsSym]!;
    t.is(connectionLine(TIME, bindings, f), lines[0]);
    const parsed = JSON.parse(lines[0]!) as Record<string, unknown>;
    t.is(parsed.msg, 'connection closed');
    t.is('error' in parsed, f.error !== null, 'no error field without an error');
  }
});
