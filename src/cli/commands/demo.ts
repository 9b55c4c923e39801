import type { Command } from 'commander';
import { LpxError } from '../../common/errors.ts';

// Placeholder registered so the CLI frame is complete; the implementation lands with its issue.
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('(not yet available)')
    .action(() => {
      throw new LpxError('LPX_ERR_USAGE', 'demo is not available yet');
    });
}
