/** A reload turns license-aware routing on and off in place (SPEC 2.6): held clients stay, new ones follow the file. */
import test from 'ava';
import { parseProxyConfig } from '../../src/config/proxy-schema.ts';
import { freePort } from '../helpers/ports.ts';
import { balancer, checkout, countBy, licds, serversYaml, FEATURE } from './support.ts';

const yaml = (ls: Parameters<typeof serversYaml>[0], pool: string, frontendPort: number) => `pools:
  lic:
${pool}
    check: { type: lmstat }
    servers:
${serversYaml(ls)}
frontends:
  - { name: lic, listen: 127.0.0.1:${frontendPort}, pool: lic }
`;

test('reload from round robin to balance: seats and back: held connections kept, new clients by seats, then round robin again', async (t) => {
  const ls = await licds(t, ['a', 'b'], [4, 40]);
  const fport = await freePort();
  const { app, port: first } = await balancer(t, yaml(ls, '    balance: roundrobin', fport));
  const rr = await Promise.all(Array.from({ length: 4 }, () => checkout(t, first)));
  const port = () => app.runtime.port('lic');
  t.deepEqual(countBy(rr), { a: 2, b: 2 });
  await app.runtime.apply(parseProxyConfig('t.yaml', yaml(ls, `    balance: seats\n    feature: ${FEATURE}`, fport)));
  const pool = app.runtime.pool('lic')!;
  t.true(pool.servers.every((s) => s.seatLedger !== null), 'seats counted from the reload on');
  t.is(pool.server('a')!.seatLedger!.open, 2, "the ledger starts with the server's live connections");
  // a: 2 of 4 free, b: 38 of 40: by seats every new client goes to b until b's free seats come down to a's.
  const seats = await Promise.all(Array.from({ length: 6 }, () => checkout(t, port())));
  t.deepEqual(countBy(seats), { b: 6 });
  t.true(rr.every((c) => !c.client.isClosed), 'no connection closed by the reload');
  await app.runtime.apply(parseProxyConfig('t.yaml', yaml(ls, '    balance: roundrobin', fport)));
  t.true(pool.servers.every((s) => s.seatLedger === null), 'seats no longer counted');
  const back = await Promise.all(Array.from({ length: 2 }, () => checkout(t, port())));
  t.deepEqual(countBy(back), { a: 1, b: 1 });
});
