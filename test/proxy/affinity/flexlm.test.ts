/**
 * A FlexLM-shaped pool (named ports `lmgrd` + `vendor`) with affinity by source: every client's vendor
 * connection reaches the server whose lmgrd it talked to, whatever the port.
 */
import test from 'ava';
import { startProxy } from '../../helpers/proxy.ts';
import { startFlexServer } from './flexlm-server.ts';
import { clientAddress, Line, runBounded } from './support.ts';

const CLIENTS = 1_000;

test('flexlm-shaped pool, by source: 1,000 clients, each vendor connection reaches its lmgrd server', async (t) => {
  t.timeout(150_000);
  const servers = await Promise.all(['lm1', 'lm2', 'lm3'].map(startFlexServer));
  t.teardown(() => Promise.all(servers.map((s) => s.close())).then(() => {}));
  const rt = await startProxy(t, {
    pools: [
      {
        name: 'flex',
        ports: { lmgrd: 1, vendor: 1 },
        affinity: { by: 'source', ttl: 3_600_000, maxBindings: 100_000 },
        servers: servers.map((s) => ({ name: s.name, ports: s.ports })),
      },
    ],
    frontends: [
      { name: 'lmgrd', pool: 'flex', port: 'lmgrd' },
      { name: 'vendor', pool: 'flex', port: 'vendor' },
    ],
  });

  const answers = await runBounded(CLIENTS, 200, 120_000, async (i) => {
    const addr = clientAddress(21, i);
    const lm = await Line.connect(rt.port('lmgrd'), addr);
    try {
      const referral = await lm.request(`HELLO id=${i}`);
      if (!referral?.startsWith('VENDOR ')) return `lmgrd: ${referral}`;
      const v = await Line.connect(rt.port('vendor'), addr);
      try {
        return (await v.request(`HELLO id=${i}`)) ?? 'no answer';
      } finally {
        v.destroy();
      }
    } finally {
      lm.destroy();
    }
  });

  const bad = answers.filter((a) => a !== 'OK');
  t.deepEqual(bad.slice(0, 5), [], `${bad.length} clients misrouted`);
  t.is(servers.reduce((n, s) => n + s.ok, 0), CLIENTS);
  t.is(servers.reduce((n, s) => n + s.fail, 0), 0);
  for (const s of servers) t.true(s.seen.size > CLIENTS / 6, `${s.name} took its share (${s.seen.size})`);
});
