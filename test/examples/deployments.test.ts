import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { silentLogger } from '../../src/common/logger.ts';
import { parseProxyConfig } from '../../src/config/proxy-schema.ts';
import { connect } from '../../src/client/license-client.ts';
import { openTokens } from '../../src/client/token-client.ts';
import { createMonitorFactory } from '../../src/health/health-monitor.ts';
import { ProxyApp } from '../../src/proxy/app.ts';
import { LICD, REPO } from '../helpers/cli.ts';
import { freePort } from '../helpers/ports.ts';
import { startLicd } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * Each SPEC 7 deployment example, started as written against local licd servers: the example's pools, modes,
 * tiers, affinity and checks stay; only addresses move to loopback (servers to the licd instances started here,
 * frontends to ephemeral ports, allow lists to 127.0.0.0/8). Then one checkout (with tokens where the
 * deployment has a token port) goes through the balancer.
 */
interface Backend {
  license: number;
  tokens: number;
}

type Json = Record<string, any>;

/** The redundant examples run the shipped licd example files (their own fixed loopback ports). */
const REDUNDANT: Record<string, string[]> = {
  'flexlm-triad.yaml': ['triad-1.yaml', 'triad-2.yaml', 'triad-3.yaml'],
  'backup-pair.yaml': ['pair-primary.yaml', 'pair-backup.yaml'],
};

const examples = ['lmx-active-passive.yaml', 'lmx-active-active.yaml', 'lsdyna-tokens.yaml', 'geo-sites.yaml', 'flexlm-triad.yaml', 'backup-pair.yaml'];

for (const example of examples) {
  test.serial(`example ${example}: a checkout goes through the balancer to a local licd`, async (t) => {
    t.timeout(90_000);
    const doc = YAML.parse(readFileSync(join(REPO, 'conf/examples', example), 'utf8')) as Json;
    const [poolName, pool] = Object.entries(doc.pools as Json)[0]! as [string, Json];
    const portNames = pool.ports ? Object.keys(pool.ports) : ['main'];
    const backends = new Map<string, Backend>();

    if (REDUNDANT[example]) {
      for (const file of REDUNDANT[example]!) {
        const licd = YAML.parse(readFileSync(join(REPO, 'conf/examples/licd', file), 'utf8')) as Json;
        backends.set(licd.server.name, { license: licd.server.ports.license, tokens: licd.server.ports.tokens });
        const child = spawn(process.execPath, [LICD, '-c', join('conf/examples/licd', file), '--log-level', 'warn'], { cwd: REPO, stdio: 'ignore' });
        t.teardown(() => stopChild(child));
      }
    } else {
      for (const s of pool.servers as Json[]) {
        const licd = await startLicd({ name: s.name });
        t.teardown(() => licd.stop());
        backends.set(s.name, { license: licd.ports.license, tokens: licd.ports.tokens });
      }
    }

    for (const s of pool.servers as Json[]) {
      const b = backends.get(s.name);
      t.truthy(b, `a licd named ${s.name}`);
      delete s.address;
      s.host = '127.0.0.1';
      // The pool's first named port is licd's license port, a second one its token port.
      s.ports = { [portNames[0]!]: b!.license, ...(portNames[1] ? { [portNames[1]]: b!.tokens } : {}) };
    }
    if (!pool.ports) pool.ports = { main: 1 };
    delete doc.stats;
    for (const f of doc.frontends as Json[]) {
      f.listen = `127.0.0.1:${await freePort()}`;
      if (f.allow) f.allow = ['127.0.0.0/8'];
    }
    const config = parseProxyConfig(example, YAML.stringify(doc));
    const app = await ProxyApp.start({ config, log: silentLogger, monitorFactory: createMonitorFactory() });
    t.teardown(() => app.stop(0));
    await waitFor(() => app.runtime.readiness().ready, { timeout: 30_000, what: `pool ${poolName} ready` });

    const lic = config.frontends.find((f) => f.port === portNames[0])!;
    const tok = portNames[1] ? config.frontends.find((f) => f.port === portNames[1]) : undefined;
    // A master change right after start-up (a triad still electing) is retried like a client would.
    const granted = await waitFor(
      async () => {
        const client = await connect('127.0.0.1', app.runtime.port(lic.name), { timeout: 5000, resume: false });
        try {
          await client.hello('alice', 'ws1');
          const g = await client.checkout('LS-DYNA');
          let tokens = 0;
          if (tok) {
            const tc = await openTokens('127.0.0.1', app.runtime.port(tok.name), { timeout: 5000 });
            tokens = (await tc.tokens(g.handle, 4)).tokens;
            await tc.close();
          }
          await client.checkin(g.handle);
          return { handle: g.handle, tokens };
        } finally {
          client.destroy();
        }
      },
      { timeout: 30_000, interval: 250, what: `a checkout through ${example}` },
    );
    t.regex(granted.handle, /^[A-Za-z0-9_-]+\.[0-9a-f]+$/);
    if (tok) t.is(granted.tokens, 4);
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}
