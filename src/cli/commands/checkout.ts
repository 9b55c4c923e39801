import type { Command } from 'commander';
import { LpxError } from '../../common/errors.ts';

// Placeholder registered so the CLI frame is complete; the implementation lands with its issue.
export function registerCheckout(program: Command): void {
  program
    .command('checkout')
    .description('(not yet available)')
    .action(() => {
      throw new LpxError('LPX_ERR_USAGE', 'checkout is not available yet');
    });
}
