/**
 * `check.observe: response` (SPEC 2.4): a client sent bytes and the server sent nothing back within
 * `check.timeout` counts as one failed check, so a hung server is caught by live traffic between two checks.
 *
 * Hot path: one watch per forwarded connection, created only when the pool observes responses. Per chunk it does
 * a boolean test; it arms its one timer (`refresh()`, no allocation) only when client bytes arrive and no answer
 * is outstanding, and a server chunk just clears the flag (the timer then fires once and does nothing).
 *
 * How the forwarder uses it, once per connection, after both sockets exist:
 *
 *   const monitor = server.monitor;              // HealthMonitorLike | null (no monitor: nothing to tell)
 *   const watch = check.observe === 'response' && monitor ? new ResponseWatch(check.timeout, monitor) : undefined;
 *   if (watch) {
 *     client.on('data', watch.onClientData);   // alongside pipe(): both see every chunk
 *     upstream.on('data', watch.onServerData);
 *   }
 *   // when the connection ends (either side, any reason):
 *   watch?.close();
 *
 * It suits request/response protocols (license checkouts, heartbeats): a protocol whose client sends messages
 * that get no answer must not turn it on.
 */

/** The part of a HealthMonitor the watch reports to. */
export interface FailureSink {
  reportFailure(reason: string): void;
}

export class ResponseWatch {
  readonly #timeoutMs: number;
  readonly #sink: FailureSink;
  readonly #reason: string;
  #timer: NodeJS.Timeout | undefined;
  /** Client bytes went out and no server byte came back yet. */
  #waiting = false;
  #closed = false;

  constructor(timeoutMs: number, sink: FailureSink) {
    this.#timeoutMs = timeoutMs;
    this.#sink = sink;
    this.#reason = `no response within ${timeoutMs}ms`;
  }

  /** Client -> server bytes. Bound: pass it to `on('data')` as is. */
  readonly onClientData = (): void => {
    if (this.#waiting || this.#closed) return;
    this.#waiting = true;
    if (this.#timer === undefined) {
      this.#timer = setTimeout(this.#expire, this.#timeoutMs);
      // A forwarded connection's watch must not keep a stopping process alive.
      this.#timer.unref();
    } else {
      this.#timer.refresh();
    }
  };

  /** Server -> client bytes. */
  readonly onServerData = (): void => {
    this.#waiting = false;
  };

  /** The connection ended: no report for an answer that can no longer come. */
  close(): void {
    this.#closed = true;
    this.#waiting = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** True while client bytes await an answer (for tests and the stats page). */
  get waiting(): boolean {
    return this.#waiting;
  }

  readonly #expire = (): void => {
    if (!this.#waiting || this.#closed) return;
    // One report per silence: the next client bytes after an answer (or this report) arm it again.
    this.#waiting = false;
    this.#sink.reportFailure(this.#reason);
  };
}
