/**
 * How a client connection ended: the `end` field of its log line (SPEC 2.5). A closed union so that every place
 * that closes a connection says why in the same words.
 */
export type EndReason =
  /** The client closed (FIN both ways done) or reset. */
  | 'client_close'
  /** The server closed or reset. */
  | 'server_close'
  /** No byte either way for `timeouts.idle`. */
  | 'idle_timeout'
  /** The server closed its side and the client did not close its own within `timeouts.client_fin`. */
  | 'client_fin_timeout'
  /** Every connect attempt (first + `retries`) failed. */
  | 'connect_failed'
  /** The pool had no usable server for a new client (every server down, drained, or no MASTER). */
  | 'no_server'
  /** The server was marked DOWN with `check.on_down: close`. */
  | 'server_down'
  /** The client address is outside the frontend's `allow` list. */
  | 'denied'
  /** Over the global or per-frontend `max_connections`. */
  | 'over_limit'
  /** An operator put the server in `maint` with `maint_kill`. */
  | 'admin'
  /** The balancer stopped and `global.grace` ran out. */
  | 'shutdown'
  /** Waited `timeouts.queue` for a free server slot. */
  | 'queue_timeout'
  /** Affinity by handle: no complete first line within `timeouts.connect`. */
  | 'first_line_timeout'
  /** Affinity by handle: a first line over 4096 bytes (answered `ERR LINE_TOO_LONG`). */
  | 'bad_request'
  /** Affinity by handle: the handle names no usable server of the pool (answered `ERR UNKNOWN_HANDLE`). */
  | 'unknown_handle'
  /** licd `route: feature`: no line that routes (CHECKOUT, a handle, STATUS...) within `timeouts.connect`. */
  | 'no_checkout';

/** A live connection as seen by its server: something that can be closed with a reason. */
export interface Closable {
  close(reason: EndReason): void;
  /** Client -> server and server -> client bytes so far (the live part of the stats). */
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** The server's named port the connection goes to (seat counting, SPEC 8.1); absent: not a client connection. */
  readonly portName?: string;
  /** licd master pools: the server is no longer the master; a connection still waiting for an answer moves on. */
  masterMoved?(): void;
}
