/**
 * The one log line of every connection (README "Logs"). Written at thousands a second, so where the logger allows
 * it (`lineSink`: a createLogger logger with batching) the line is formatted here as a string, byte for byte what
 * pino would write for `log.info(fields, 'connection closed')`, without pino walking an object; elsewhere (tests'
 * capture loggers, pretty output) it goes through pino. test/proxy/connection-log.test.ts holds the two equal.
 */
import type { Logger } from '../common/logger.ts';
import type { EndReason } from './end-reason.ts';

export interface ConnectionLogFields {
  client: string;
  pool: string;
  server: string | null;
  tier: number | null;
  attempts: number;
  queueMs: number;
  connectMs: number;
  totalMs: number;
  bytesIn: number;
  bytesOut: number;
  end: EndReason;
  /** Left out of the line when null. */
  error: string | null;
}

export const CONNECTION_CLOSED = 'connection closed';

/** The line pino writes at level info, given the logger's serialized bindings (`,"pid":1,"name":"licproxy",...`). */
export function connectionLine(time: number, bindings: string, f: ConnectionLogFields): string {
  return (
    `{"level":30,"time":${time}${bindings},"client":${JSON.stringify(f.client)},"pool":${JSON.stringify(f.pool)}` +
    `,"server":${f.server === null ? 'null' : JSON.stringify(f.server)},"tier":${f.tier === null ? 'null' : f.tier}` +
    `,"attempts":${f.attempts},"queueMs":${f.queueMs},"connectMs":${f.connectMs},"totalMs":${f.totalMs}` +
    `,"bytesIn":${f.bytesIn},"bytesOut":${f.bytesOut},"end":"${f.end}"` +
    `${f.error === null ? '' : `,"error":${JSON.stringify(f.error)}`},"msg":"${CONNECTION_CLOSED}"}\n`
  );
}

/** Writes the line through `sink` when there is one, else through pino. */
export function logConnection(log: Logger, sink: { write(line: string): boolean; bindings: string } | null, time: number, f: ConnectionLogFields): void {
  if (sink !== null) {
    sink.write(connectionLine(time, sink.bindings, f));
    return;
  }
  // pino leaves out undefined fields.
  log.info({ ...f, error: f.error ?? undefined }, CONNECTION_CLOSED);
}
