/**
 * A license server that is up and answering but no longer has a required feature (removed, or expired, by a
 * license file reload: rewrite the file, SIGHUP) fails the lmstat check, with the reason in the DOWN event
 * (SPEC 2.4 `require_features`); new clients go to the secondary meanwhile.
 */
import test from 'ava';
import { LicenseClient } from '../../src/client/license-client.ts';
import type { FeatureSpec } from '../helpers/licd.ts';
import { SEATS, spawnServer, startBalancer, waitEvent, waitSettled } from './support.ts';

const OTHER: FeatureSpec = { name: 'MPPDYNA', count: 64, kind: 'tokens' };

test('require_features: a feature removed, then expired, by SIGHUP fails the lmstat check with that reason', async (t) => {
  t.timeout(90_000);
  const primary = await spawnServer(t, { name: 'primary', features: [...SEATS, OTHER] });
  const secondary = await spawnServer(t, { name: 'secondary', features: [...SEATS, OTHER] });
  const app = await startBalancer(
    t,
    `
global: { log_level: silent }
pools:
  lic:
    mode: failover
    check: { type: lmstat, require_features: [LS-DYNA], interval: 300ms, fast_interval: 100ms, down_interval: 300ms, rise: 1, fall: 2 }
    servers:
      - { name: primary,   address: 127.0.0.1:${primary.ports.license} }
      - { name: secondary, address: 127.0.0.1:${secondary.ports.license}, tier: 1 }
frontends:
  - { name: lic, listen: 127.0.0.1:0, pool: lic }
`,
  );
  await waitSettled(app, 'lic', ['primary', 'secondary'], 'primary');
  const newClientGoesTo = async (): Promise<string> => {
    const c = await LicenseClient.connect('127.0.0.1', app.runtime.port('lic'), { resume: false, timeout: 5_000 });
    try {
      return (await c.hello('u', 'ws')).server;
    } finally {
      c.destroy();
    }
  };
  t.is(await newClientGoesTo(), 'primary');

  const reload = (features: FeatureSpec[]): number => {
    primary.rewrite({ name: 'primary', features });
    const at = Date.now();
    primary.child.kill('SIGHUP');
    return at;
  };

  const removedAt = reload([OTHER]);
  const missing = await waitEvent(app, 'lic', 'primary', 'DOWN', removedAt);
  t.log(`removed: DOWN ${missing.time - removedAt}ms after SIGHUP: "${missing.reason}"`);
  t.is(missing.reason, 'feature LS-DYNA missing');
  t.is(await newClientGoesTo(), 'secondary');

  const restoredAt = reload([...SEATS, OTHER]);
  await waitEvent(app, 'lic', 'primary', 'UP', restoredAt);
  t.is(await newClientGoesTo(), 'primary');

  const expiredAt = reload([{ ...SEATS[0]!, expires: '2020-01-31' }, OTHER]);
  const expired = await waitEvent(app, 'lic', 'primary', 'DOWN', expiredAt);
  t.log(`expired: DOWN ${expired.time - expiredAt}ms after SIGHUP: "${expired.reason}"`);
  t.is(expired.reason, 'feature LS-DYNA expired');
  t.is(await newClientGoesTo(), 'secondary');
  // The lmstat usage on the stats page says the same.
  const usage = app.runtime.server('lic', 'primary')!.snapshot().lastCheck?.features?.find((f) => f.name === 'LS-DYNA');
  t.like(usage, { expired: true, expiry: '31-jan-2020' });
});
