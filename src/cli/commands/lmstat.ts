import type { Command } from 'commander';
import { parseHostPort } from '../../common/address.ts';
import { parseDuration } from '../../common/duration.ts';
import { LpxError } from '../../common/errors.ts';
import { asLpxError } from '../../client/client-errors.ts';
import { LicenseClient } from '../../client/license-client.ts';
import { parseLmstat } from '../../client/lmstat-parser.ts';

interface LmstatFlags {
  server: string;
  json?: boolean;
  timeout: string;
}

export function registerLmstat(program: Command): void {
  program
    .command('lmstat')
    .description('print the lmstat-style status of a licd server, or of the pool behind a balancer')
    .requiredOption('-s, --server <host:port>', 'license port of a licd server or of a balancer frontend')
    .option('--json', 'print the parsed status (servers, vendor daemons, features, users) as JSON')
    .option('--timeout <duration>', 'connect and answer timeout', '5s')
    .action((flags: LmstatFlags) => runLmstat(flags));
}

async function runLmstat(flags: LmstatFlags): Promise<void> {
  const target = parseHostPort(flags.server);
  if (typeof target === 'string') throw new LpxError('LPX_ERR_USAGE', `-s: ${target}`);
  const timeout = parseDuration(flags.timeout);
  if (timeout === undefined || timeout < 1) {
    throw new LpxError('LPX_ERR_USAGE', `--timeout expects a duration with a unit (500ms, 5s), got "${flags.timeout}"`);
  }
  let client: LicenseClient | undefined;
  try {
    client = await LicenseClient.connect(target.host, target.port, { timeout });
    const text = await client.status();
    await client.close();
    process.stdout.write(flags.json ? JSON.stringify(parseLmstat(text), null, 2) + '\n' : text);
  } catch (err) {
    throw asLpxError(err, err instanceof Error && /^(STATUS|connect)\b/.test(err.message) ? '' : 'STATUS: ');
  } finally {
    client?.destroy();
  }
}
