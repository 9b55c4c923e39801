/** `type: send_expect`: send `check.send` on the check port and read until `check.expect` matches. */
import type { CheckConfig } from '../config/proxy-config.ts';
import { CheckFailure, PASS, portOf, runBounded, shortReason, type Check, type CheckTarget } from './check.ts';
import type { CheckResult } from './types.ts';
import { converse, labelFailure, probePorts } from './socket-probe.ts';

/** An expected answer is a status line or a banner, not a download. */
const MAX_ANSWER_CHARS = 64 * 1024;

export class SendExpectCheck implements Check {
  readonly #timeout: number;
  readonly #port: string;
  readonly #others: readonly string[];
  readonly #send: string | null;
  readonly #expect: RegExp | null;
  readonly #badExpect: string | null = null;

  constructor(config: CheckConfig) {
    this.#timeout = config.timeout;
    this.#port = config.port;
    this.#others = config.ports.filter((p) => p !== config.port);
    this.#send = config.send;
    let expect: RegExp | null = null;
    if (config.expect !== null) {
      try {
        expect = new RegExp(config.expect, 'm');
      } catch {
        // The config layer validates the regex; this keeps a bad one from crashing the monitor anyway.
        this.#badExpect = shortReason(`bad expect regex /${config.expect}/`);
      }
    }
    this.#expect = expect;
  }

  run(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
    return runBounded(this.#timeout, signal, async (bounded) => {
      if (this.#badExpect) throw new CheckFailure(this.#badExpect);
      const expect = this.#expect;
      const main = converse({
        host: target.host,
        port: portOf(target, this.#port),
        signal: bounded,
        send: this.#send,
        done: expect ? (answer) => expect.test(answer) : undefined,
        maxChars: MAX_ANSWER_CHARS,
        closedReason: expect ? shortReason(`closed before /${expect.source}/ matched`) : undefined,
      });
      const others = this.#others.length ? probePorts(target.host, target.ports, this.#others, bounded, true) : undefined;
      await Promise.all([others ? labelFailure(this.#port, main, bounded) : main, others]);
      return PASS;
    });
  }
}
