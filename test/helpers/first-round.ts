/**
 * The first round of a random seat load: every client's first checkout at once, each granted seat held until every
 * client has its first answer. A pool with fewer seats than clients then denies some however slow the machine is;
 * the random load after it may deny none on a loaded machine, whose slower round trips leave fewer clients holding.
 *
 *   const round = new FirstRound(200);
 *   // per client, first iteration: const answered = round.ticket(); ... answered(); if (granted) await round.done;
 */
export class FirstRound {
  readonly clients: number;
  readonly done: Promise<void>;
  #answered = 0;
  #release!: () => void;

  constructor(clients: number) {
    this.clients = clients;
    this.done = new Promise<void>((resolve) => (this.#release = resolve));
  }

  /** For one client's first checkout: call the result once its answer is in (or it failed); later calls do nothing. */
  ticket(): () => void {
    let used = false;
    return () => {
      if (used) return;
      used = true;
      if (++this.#answered === this.clients) this.#release();
    };
  }
}
