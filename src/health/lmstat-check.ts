/**
 * `type: lmstat`: asks the licd status query (`STATUS`) on the check port, reads the lmstat-style answer up to
 * its `END` line and judges it (lmstat-verdict.ts). A hung server passes a tcp check (the kernel still completes
 * handshakes) but fails this one with a timeout.
 */
import type { CheckConfig } from '../config/proxy-config.ts';
import { CheckFailure, portOf, runBounded, shortReason, type Check, type CheckTarget } from './check.ts';
import { lmstatVerdict } from './lmstat-verdict.ts';
import type { CheckResult } from './types.ts';
import { converse, labelFailure, probePorts } from './socket-probe.ts';

const STATUS_QUERY = 'STATUS\n';
/** A server with thousands of users prints a lot; beyond this the answer is refused rather than buffered. */
const MAX_ANSWER_CHARS = 1024 * 1024;
const END_LINE = /(?:^|\n)END\r?\n/;
/** An error answer (`ERR NO_QUORUM`) is one line and has no END. */
const ERR_LINE = /^ERR\b[^\n]*\n/;

export class LmstatCheck implements Check {
  readonly #timeout: number;
  readonly #port: string;
  readonly #others: readonly string[];
  readonly #require: readonly string[];

  constructor(config: CheckConfig) {
    this.#timeout = config.timeout;
    this.#port = config.port;
    this.#others = config.ports.filter((p) => p !== config.port);
    this.#require = config.requireFeatures;
  }

  run(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
    return runBounded(this.#timeout, signal, async (bounded) => {
      const answer = converse({
        host: target.host,
        port: portOf(target, this.#port),
        signal: bounded,
        send: STATUS_QUERY,
        done: (text) => END_LINE.test(text) || ERR_LINE.test(text),
        maxChars: MAX_ANSWER_CHARS,
        closedReason: 'closed before END of status',
      });
      const others = this.#others.length ? probePorts(target.host, target.ports, this.#others, bounded, true) : undefined;
      const [text] = await Promise.all([others ? labelFailure(this.#port, answer, bounded) : answer, others]);
      const err = ERR_LINE.exec(text);
      if (err) throw new CheckFailure(shortReason(err[0]));
      return lmstatVerdict(text, target.host, this.#require);
    });
  }
}
