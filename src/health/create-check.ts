/** The one place a check type becomes a Check. A new type is a new file plus one line here. */
import type { CheckConfig } from '../config/proxy-config.ts';
import type { Check } from './check.ts';
import { ExternalCheck } from './external-check.ts';
import { LmstatCheck } from './lmstat-check.ts';
import { SendExpectCheck } from './send-expect-check.ts';
import { TcpCheck } from './tcp-check.ts';

/** null for `type: none`: the server is not checked and counts as UP. */
export function createCheck(config: CheckConfig): Check | null {
  switch (config.type) {
    case 'none':
      return null;
    case 'tcp':
      return new TcpCheck(config);
    case 'send_expect':
      return new SendExpectCheck(config);
    case 'lmstat':
      return new LmstatCheck(config);
    case 'external':
      return new ExternalCheck(config);
  }
}
