/**
 * The IPC messages between bench/held.ts and its loader children (bench/lib/held/loader.ts). One file so both
 * sides agree on the shape; every request carries an id that its answer echoes, so answers can never be mixed up.
 */

export interface OpenRequest {
  host: string;
  /** Frontend ports; connection i goes to ports[i % ports.length] (~28k ephemeral ports per destination). */
  ports: number[];
  count: number;
  /** Connections being set up at once (connect + HELLO + CHECKOUT). */
  concurrency: number;
  heartbeatMs: number;
  /** A heartbeat (or a setup step) not answered within this long is counted as late. */
  answerTimeoutMs: number;
  feature: string;
  user: string;
}

export type ToLoader =
  | { id: number; open: OpenRequest }
  /** Starts a check window: counters "since mark" restart, and the lost-connection list empties. */
  | { id: number; mark: true }
  | { id: number; report: true }
  | { id: number; close: true };

export interface WindowFigures {
  /** Connections held when the mark was set. */
  aliveAtMark: number;
  /** Of those, still held now. */
  stillAlive: number;
  /** Of those still held, how many had no heartbeat answered since the mark (must be 0 after a full round). */
  withoutAnswer: number;
  hbSent: number;
  hbAnswered: number;
  /** Heartbeats not answered within answerTimeoutMs, since the mark. */
  hbLate: number;
  /** Of those, the ones on connections still held now (a lost connection's last heartbeat may be late too). */
  hbLateAlive: number;
  /** Longest wait for a heartbeat answer since the mark on a connection still held (outstanding ones included), ms. */
  maxWaitAliveMs: number;
  /** `frontendPort:localPort` of every held connection the peer closed since the mark. */
  lost: string[];
}

export interface LoaderReport {
  /** Connections that reached GRANTED, since start. */
  held: number;
  /** Connections whose setup failed (connect error, refused, DENIED, timeout), since start. */
  failed: number;
  /** Held and not closed now. */
  alive: number;
  hbSent: number;
  hbAnswered: number;
  hbLate: number;
  /** Answers other than OK to a heartbeat. */
  hbErrors: number;
  closedByPeer: number;
  /** Held connections per licd server name (from the HELLO answer). */
  perServer: Record<string, number>;
  sinceMark: WindowFigures;
  /** The first few failure texts. */
  errorSamples: string[];
}

export type FromLoader =
  | { ready: true }
  | { id: number; opened: { held: number; failed: number; ms: number } }
  | { id: number; marked: true }
  | { id: number; report: LoaderReport }
  | { id: number; closed: true }
  | { id: number; error: string }
  /** Unsolicited, while opening: connections set up so far in the current batch. */
  | { progress: { done: number; of: number } };
