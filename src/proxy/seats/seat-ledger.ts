/**
 * Seats a server holds through this proxy (SPEC 8.1). Checks run every second; clients arrive and leave faster.
 * Between two checks, a server's seats in use are estimated as
 *
 *     in use now = (in use at the last check - our connections then) + our connections now
 *
 * the first term being the seats held by clients that do not come through this proxy (direct users, another
 * balancer). Each connection to the seat port is taken to hold one seat, from the moment it is placed (before its
 * CHECKOUT even reaches the server), so a burst spreads over the servers instead of piling onto the one the last
 * check showed emptiest, and a check-in frees its seat in the estimate at once, not a second later.
 *
 * A connection that holds no seat (a STATUS query, a denied checkout still open) only makes the server look
 * fuller: the estimate errs towards "full", where a wrong guess costs a detour, not a false denial.
 */
export class SeatLedger {
  /** The named port whose connections hold seats: the pool's check port (a FlexLM vendor port would count twice). */
  readonly port: string;
  #open = 0;
  #external = 0;

  constructor(port: string) {
    this.port = port;
  }

  /** Connections to the seat port now (each taken as one seat). */
  get open(): number {
    return this.#open;
  }

  /** Seats in use at the last check that this proxy's connections do not account for. */
  get external(): number {
    return this.#external;
  }

  placed(): void {
    this.#open++;
  }

  ended(): void {
    if (this.#open > 0) this.#open--;
  }

  /** A check reported `inUse` seats: what our connections do not explain is held elsewhere. */
  checked(inUse: number): void {
    this.#external = inUse > this.#open ? inUse - this.#open : 0;
  }
}
