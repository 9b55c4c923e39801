import { Command } from 'commander';
import { runCli } from './run-cli.ts';
import { VERSION } from './version.ts';
import { registerRun } from './commands/run.ts';
import { registerCheck } from './commands/check.ts';
import { registerLmstat } from './commands/lmstat.ts';
import { registerCheckout } from './commands/checkout.ts';
import { registerDemo } from './commands/demo.ts';

const program = new Command('licproxy')
  .description('A layer-4 load balancer for license servers (FlexLM, LM-X, LSTC, RLM, licd)')
  .version(VERSION)
  .showHelpAfterError('(run with --help for usage)');

registerRun(program);
registerCheck(program);
registerLmstat(program);
registerCheckout(program);
registerDemo(program);

await runCli(program);
