/**
 * Live sessions with `global.workers: 2` (SPEC 10): GET /api/sessions and /stats list the open connections of both
 * workers, fetched from them on request and merged (totals added, oldest first, each tagged with its worker).
 */
import test from 'ava';
import type { SessionInfo } from '../../src/proxy/session-list.ts';
import { LineClient, startLicd } from '../helpers/licd.ts';
import { getJson, request } from '../helpers/stats.ts';
import { waitFor } from '../helpers/wait.ts';
import { runCluster } from './support.ts';

interface SessionsJson {
  total: number;
  returned: number;
  sessions: SessionInfo[];
  workersMissing?: number;
}

test('workers: 2: sessions of both workers merged, licd fields included, filters and limit across workers', async (t) => {
  const licd = await startLicd({ name: 'alpha' });
  t.teardown(() => licd.stop());
  const c = await runCluster(t, () => `
global: { workers: 2, grace: 1s }
stats: { listen: 127.0.0.1:0 }
pools:
  lic:
    protocol: licd
    check: { type: tcp, interval: 100ms, fast_interval: 50ms, down_interval: 100ms, fall: 2, rise: 1 }
    servers:
      - { name: alpha, address: 127.0.0.1:${licd.ports.license} }
frontends:
  - { name: lic, listen: 127.0.0.1:0, pool: lic }
`);
  await waitFor(async () => (await c.json()).pools[0]!.servers[0]!.status === 'UP', { timeout: 15_000, what: 'alpha UP' });
  const port = await c.port('lic');
  const clients: LineClient[] = [];
  t.teardown(() => {
    for (const x of clients) x.destroy();
  });
  for (let i = 0; i < 6; i++) {
    const x = await LineClient.connect(port);
    clients.push(x);
    t.regex(await x.request(`HELLO user=user${i} host=ws`), /^OK/);
    t.regex(await x.request('CHECKOUT LS-DYNA'), /^GRANTED /);
  }
  const all = await waitFor(async () => {
    const r = await getJson<SessionsJson>(c.stats, '/api/sessions');
    return r.json.total === 6 ? r.json : undefined;
  }, { timeout: 10_000, what: 'six sessions listed' });
  t.is(all.workersMissing ?? 0, 0);
  t.deepEqual([...new Set(all.sessions.map((s) => s.worker))].sort(), [0, 1], 'both workers hold some');
  t.deepEqual(all.sessions.map((s) => s.user).sort(), ['user0', 'user1', 'user2', 'user3', 'user4', 'user5']);
  for (const s of all.sessions) {
    t.is(s.server, 'alpha');
    t.deepEqual(s.features, ['LS-DYNA']);
    t.regex(s.handle ?? '', /^alpha\.[0-9a-f]{16}$/);
  }
  const since = all.sessions.map((s) => s.since);
  t.deepEqual(since, [...since].sort((x, y) => x - y), 'oldest first across workers');
  const limited = (await getJson<SessionsJson>(c.stats, '/api/sessions?limit=3')).json;
  t.is(limited.total, 6);
  t.is(limited.returned, 3);
  t.deepEqual(limited.sessions.map((s) => s.user), all.sessions.slice(0, 3).map((s) => s.user));
  const mine = clients[4]!.socket.localPort;
  const one = (await getJson<SessionsJson>(c.stats, `/api/sessions?client=127.0.0.1:${mine}`)).json;
  t.is(one.total, 1);
  t.is(one.sessions[0]?.user, 'user4');
  const page = await request(c.stats, '/stats');
  t.is(page.status, 200);
  for (let i = 0; i < 6; i++) t.true(page.body.includes(`<td>user${i}</td>`), `user${i} on the page`);
});
