import { randomInt } from 'node:crypto';

/**
 * Issues `<server>.<hex id>` handles. Ids count up from a random base so a restarted daemon does not hand out the
 * handles of its previous run again (a stale client's TOKENS must not attach to someone else's session).
 */
export class HandleIssuer {
  readonly #prefix: string;
  #next: number;

  constructor(serverName: string) {
    this.#prefix = `${serverName}.`;
    this.#next = randomInt(0x10, 0x100000) * 0x100;
  }

  next(): string {
    const id = this.#next;
    this.#next = id >= 0xffffffff ? 1 : id + 1;
    return this.#prefix + id.toString(16);
  }
}
