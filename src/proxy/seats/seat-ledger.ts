/**
 * Seats a server gave out since its last check (SPEC 8.1). Checks run every second; clients arrive faster. Between
 * two checks, the free seats a check reported are spent by the connections sent to the server since, so a burst
 * spreads over the servers instead of piling onto the one the last check showed emptiest.
 *
 * Model: each connection takes one seat of the pool's feature. Counting a connection that takes none (a STATUS
 * query, a denied checkout) only makes the server look fuller until the next check: the estimate errs on the side
 * of "full", where a wrong guess costs a detour, not a false denial.
 */

/**
 * A connection placed this long before a check began is taken as seen by it. Placing comes before the CHECKOUT
 * reaches the server; a connection placed just before the check may have checked out only after the server
 * answered it, so it stays counted until the next check (counted twice for a moment, never missed).
 */
export const LEDGER_MARGIN_MS = 250;

export class SeatLedger {
  /** Connections placed since the last check (plus the margin) and still open -> when placed. Insertion = time order. */
  readonly #open = new Map<object, number>();
  /** Connections the last check saw that closed since: each likely freed a seat. */
  #freed = 0;

  /** Seats taken since the last check, as far as the proxy knows. */
  get taken(): number {
    return this.#open.size;
  }

  /** Seats the last check counted in use that have likely been freed since. */
  get freed(): number {
    return this.#freed;
  }

  placed(conn: object, now: number): void {
    this.#open.set(conn, now);
  }

  ended(conn: object): void {
    if (!this.#open.delete(conn)) this.#freed++;
  }

  /** A check that began at `startedAt` reported the server's usage: what it saw leaves the ledger. */
  checked(startedAt: number): void {
    const seenBefore = startedAt - LEDGER_MARGIN_MS;
    for (const [conn, at] of this.#open) {
      if (at >= seenBefore) break;
      this.#open.delete(conn);
    }
    this.#freed = 0;
  }
}
