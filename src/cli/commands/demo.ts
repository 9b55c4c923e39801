import type { Command } from 'commander';
import { formatHostPort } from '../../common/address.ts';
import { startBalancer, type RunningBalancer } from '../start-balancer.ts';

export const DEMO_CONFIG_FILE = 'conf/demo.yaml';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('three licd servers (primary, secondary, tertiary) behind the balancer on loopback; Ctrl-C stops all')
    .option('-c, --config <file>', 'demo configuration (a licproxy.yaml with daemons:)', DEMO_CONFIG_FILE)
    .option('--pretty', 'human-readable logs (default when the output is a terminal)')
    .action(async (opts: { config: string; pretty?: boolean }) => {
      await startBalancer({
        file: opts.config,
        ...(opts.pretty ? { pretty: true } : {}),
        daemonLogLevel: 'warn',
        onReady: (b) => process.stdout.write(banner(b)),
      });
    });
}

/** What the operator sees first: where everything listens and three things to try. */
function banner({ config, daemons, stats }: RunningBalancer): string {
  const lines = ['', 'licproxy demo: license servers behind the balancer, all on 127.0.0.1', ''];
  const pool = config.pools[0];
  for (const d of daemons?.daemons ?? []) {
    const tier = pool?.servers.find((s) => s.name === d.name)?.tier;
    lines.push(
      `  licd ${d.name.padEnd(10)} pid ${String(d.pid).padEnd(7)} license ${d.license}${d.tokens !== null ? `  tokens ${d.tokens}` : ''}${tier !== undefined ? `  (tier ${tier})` : ''}`,
    );
  }
  for (const f of config.frontends) lines.push(`  balancer ${f.name.padEnd(10)} ${formatHostPort(f.listen)} -> pool ${f.pool}, port ${f.port}`);
  const addr = stats.address;
  const statsUrl = addr ? `http://${formatHostPort(addr)}/stats` : '(no stats section)';
  lines.push(`  stats               ${statsUrl}`, '');
  const lic = config.frontends.find((f) => f.port === 'license') ?? config.frontends[0];
  const tok = config.frontends.find((f) => f.port === 'tokens');
  const primary = daemons?.daemons[0];
  if (lic) {
    const at = formatHostPort(lic.listen);
    lines.push('Try, in another terminal:');
    lines.push(`  node bin/licproxy.js checkout LS-DYNA -s ${at}${tok ? ` --tokens 8 --token-port ${tok.listen.port}` : ''} --hold 60s`);
    lines.push(`  node bin/licproxy.js lmstat -s ${at}`);
    if (primary) {
      lines.push(`  kill ${primary.pid}    # stops licd ${primary.name}: new clients fail over to the next tier; watch ${statsUrl}`);
      lines.push('  (these three servers are independent: licenses held on a killed one are lost; a redundant set whose');
      lines.push('   clients resume on the survivor is in conf/examples/backup-pair.yaml and flexlm-triad.yaml)');
    }
  }
  lines.push('Ctrl-C stops everything.', '', '');
  return lines.join('\n');
}
