/** `type: tcp`: the check port, and every port of `ports`, accepts a connection. */
import type { CheckConfig } from '../config/proxy-config.ts';
import { PASS, portsToProbe, runBounded, type Check, type CheckTarget } from './check.ts';
import type { CheckResult } from './types.ts';
import { probePorts } from './socket-probe.ts';

export class TcpCheck implements Check {
  readonly #timeout: number;
  readonly #ports: readonly string[];

  constructor(config: CheckConfig) {
    this.#timeout = config.timeout;
    this.#ports = portsToProbe(config);
  }

  run(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
    return runBounded(this.#timeout, signal, async (bounded) => {
      await probePorts(target.host, target.ports, this.#ports, bounded);
      return PASS;
    });
  }
}
