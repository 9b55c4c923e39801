import { ConfigError, type ConfigIssue } from '../../src/common/errors.ts';
import { parseProxyConfig } from '../../src/config/proxy-schema.ts';

/** One pool of one server and one frontend: the smallest valid balancer file, for tests to add keys to. */
export const MINIMAL_PROXY_YAML = `pools:
  lmx:
    servers:
      - { name: a, address: 10.0.0.1:6200 }
frontends:
  - { name: lmx, listen: 0.0.0.0:6200, pool: lmx }
`;

/** The problems parseProxyConfig reports for `text` (none when it is valid); any other error is thrown. */
export function proxyConfigIssues(text: string, file = 't.yaml'): ConfigIssue[] {
  try {
    parseProxyConfig(file, text);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  return [];
}
