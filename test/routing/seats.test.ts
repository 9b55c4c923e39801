/**
 * `balance: seats` (SPEC 8.1) against real licd servers: the issue's scenario (two independent active-active
 * servers, 10 seats each), the same through round robin (the false denials this exists to remove), FULL on the
 * stats, CSV and metrics, and the correctness of a bounded random load over three servers of uneven sizes.
 */
import test, { type ExecutionContext } from 'ava';
import { renderCsv, CSV_COLUMNS } from '../../src/stats/render-csv.ts';
import { renderHtml } from '../../src/stats/render-html.ts';
import { PrometheusExporter } from '../../src/stats/render-prometheus.ts';
import { FirstRound } from '../helpers/first-round.ts';
import { LineClient, startLicd, type InProcessLicd } from '../helpers/licd.ts';
import { prng } from '../helpers/prng.ts';
import { waitFor } from '../helpers/wait.ts';
import { DenialWitness, type DenialFigures } from './denial-witness.ts';
import { balancer, checkin, checkout, countBy, free, inUse, licds, serversYaml, statsOf, FEATURE, type Checkout } from './support.ts';

function poolYaml(ls: Record<string, InProcessLicd>, balance: string): string {
  return `pools:
  lic:
    balance: ${balance}
    feature: ${FEATURE}
    check: { type: lmstat }
    servers:
${serversYaml(ls)}
frontends:
  - { name: lic, listen: 127.0.0.1:0, pool: lic }
`;
}

/** The issue's scenario: 16 check out, the ones on b check in, 12 new check out at once. Returns the 12. */
async function scenario(t: ExecutionContext, balance: string): Promise<{ first: Checkout[]; second: Checkout[]; ls: Record<string, InProcessLicd> }> {
  const ls = await licds(t, ['a', 'b'], [10, 10]);
  const { port } = await balancer(t, poolYaml(ls, balance));
  const first = await Promise.all(Array.from({ length: 16 }, () => checkout(t, port)));
  t.true(first.every((c) => c.granted), '16 of 20 seats: every first checkout granted');
  t.deepEqual(countBy(first), { a: 8, b: 8 }, 'the first 16 spread evenly');
  await Promise.all(first.filter((c) => c.server === 'b').map(checkin));
  t.is(inUse(ls.b!), 0);
  const second = await Promise.all(Array.from({ length: 12 }, () => checkout(t, port)));
  return { first, second, ls };
}

test('issue scenario through balance: seats: 0 of 12 denied while 12 seats are free', async (t) => {
  const { second, ls } = await scenario(t, 'seats');
  const denied = second.filter((c) => !c.granted);
  t.is(denied.length, 0, `denied: ${denied.map((c) => `${c.server}: ${c.answer}`).join('; ')}`);
  t.is(inUse(ls.a!) + inUse(ls.b!), 20);
  t.deepEqual(countBy(second), { a: 2, b: 10 });
});

test('control: the same scenario through round robin denies 4 of 12 while seats are free (the defect)', async (t) => {
  const { second, ls } = await scenario(t, 'roundrobin');
  const denied = second.filter((c) => !c.granted);
  t.is(denied.length, 4);
  t.true(denied.every((c) => c.server === 'a'));
  t.true(free(ls.b!) >= 4, 'b had free seats when a denied them');
});

test('a server out of seats is FULL (not DOWN) on /stats, CSV and metrics; its clients stay; it takes clients again once seats free', async (t) => {
  const ls = await licds(t, ['a', 'b'], [2, 20]);
  const { app, port } = await balancer(t, poolYaml(ls, 'seats'));
  // 22 clients for 22 seats: every one granted, both servers full.
  const held = await Promise.all(Array.from({ length: 22 }, () => checkout(t, port)));
  t.true(held.every((c) => c.granted), 'every seat of the pool granted, none denied');
  t.deepEqual(countBy(held), { a: 2, b: 20 });
  // Ten of b's clients check in: b has seats again at once (the proxy saw them leave), a stays FULL.
  await Promise.all(held.filter((c) => c.server === 'b').slice(0, 10).map(checkin));
  const snap = statsOf(app);
  const a = snap.pools[0]!.servers.find((s) => s.name === 'a')!;
  const b = snap.pools[0]!.servers.find((s) => s.name === 'b')!;
  t.is(a.status, 'FULL');
  t.is(a.freeSeats, 0);
  t.is(b.status, 'UP');
  t.is(b.freeSeats, 10);
  t.is(a.scur, 2, 'FULL keeps its clients');
  const csv = renderCsv(snap).split('\n');
  const statusAt = CSV_COLUMNS.indexOf('status');
  const freeAt = CSV_COLUMNS.indexOf('free_seats');
  const rowA = csv.find((l) => l.startsWith('lic,a,'))!.split(',');
  t.is(rowA[statusAt], 'FULL');
  t.is(rowA[freeAt], '0');
  const metrics = new PrometheusExporter({ defaultMetrics: false }).renderOwn(snap);
  t.true(metrics.includes('licproxy_server_full{pool="lic",server="a"} 1'));
  t.true(metrics.includes('licproxy_server_full{pool="lic",server="b"} 0'));
  t.true(metrics.includes('licproxy_license_feature_free{pool="lic",server="b",feature="F"} 10'));
  t.true(metrics.includes('licproxy_server_up{pool="lic",server="a"} 1'), 'FULL is not DOWN');
  t.regex(renderHtml(snap, [], { refreshMs: 0 }), /<tr class="full[^"]*">.*?<td class="st">FULL<\/td>/);
  // New clients avoid a while it is full.
  const more = await Promise.all(Array.from({ length: 5 }, () => checkout(t, port)));
  t.deepEqual(countBy(more), { b: 5 });
  // a's clients check in: after its next check it is UP again and takes clients.
  await Promise.all(held.filter((c) => c.server === 'a').map(checkin));
  await waitFor(() => statsOf(app).pools[0]!.servers.find((s) => s.name === 'a')!.status === 'UP', { what: 'a UP again' });
});

/**
 * 200 clients over three servers of 15 / 30 / 45 seats check out, hold a random while and check in, for a bounded
 * time and count, at a demand above the pool's capacity (about 130 clients hold at once on a quiet machine; a
 * loaded one's slower round trips lower that, so the first round is all 200 at once), through `balance: seats` and
 * through round robin (layer 4, no retry). Asserted: what must hold whatever the timing (every checkout answered
 * once, every seat a server granted reached its client, every seat back at the end). The false denials of each
 * (judged as in denial-witness.ts) are printed, not compared: how many a layer-4 choice makes depends on the
 * machine's speed. The comparison is bench/false-denials.ts; 0 false denials (with the licd-protocol retry) is
 * zero-false-denials.test.ts.
 */
async function randomLoad(t: ExecutionContext, balance: string): Promise<{ checkouts: number; granted: number } & DenialFigures> {
  const witness = new DenialWitness(FEATURE);
  const ls: Record<string, InProcessLicd> = {};
  for (const [name, count] of [['a', 15], ['b', 30], ['c', 45]] as const) {
    const l = await startLicd({ name, features: [{ name: FEATURE, count }] }, witness.logger(name));
    t.teardown(() => l.stop());
    witness.watch(name, l);
    ls[name] = l;
  }
  const { app, port } = await balancer(t, poolYaml(ls, balance));
  const rnd = prng(13);
  const until = Date.now() + 7_000;
  const maxCheckouts = 3_000;
  let checkouts = 0;
  let granted = 0;
  const CLIENTS = 200;
  // 200 first checkouts at once against 90 seats: at least 110 denied, however slow the machine.
  const round = new FirstRound(CLIENTS);
  const client = async (): Promise<void> => {
    for (let mine = 0; Date.now() < until && checkouts < maxCheckouts; mine++) {
      const user = `u${checkouts++}`;
      const isFirst = mine === 0;
      const answered = isFirst ? round.ticket() : () => {};
      let c: LineClient | undefined;
      try {
        c = await LineClient.connect(port);
        await c.request(`HELLO user=${user} host=ws`, 30_000);
        const answer = await c.request(`CHECKOUT ${FEATURE}`, 30_000);
        answered();
        if (answer.startsWith('GRANTED')) {
          granted++;
          witness.granted(user);
          if (isFirst) await round.done;
          await new Promise((r) => setTimeout(r, 20 + rnd() * 400));
        } else {
          t.regex(answer, /^DENIED .*reason=EXHAUSTED/);
          witness.deniedReceived(user);
        }
      } finally {
        answered();
        // A denied license client gives up and closes at once (then tries again a little later).
        c?.destroy();
      }
      await new Promise((r) => setTimeout(r, rnd() * 200));
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
  t.is(granted + witness.received, checkouts, `${balance}: every checkout answered GRANTED or DENIED`);
  t.is(witness.unexplained, 0, `${balance}: every DENIED came from a server`);
  t.is(witness.decided, witness.received, `${balance}: no retry at layer 4, every denial reached its client`);
  t.is(witness.grantsIssued, granted, `${balance}: every seat granted reached its client`);
  await waitFor(() => Object.values(ls).every((l) => inUse(l) === 0), { what: `${balance}: every seat back` });
  await app.stop(0);
  return { checkouts, granted, ...witness.figures };
}

test.serial('random load, 200 clients over uneven servers, seats and round robin: every checkout answered once, no seat lost or doubled (false denials printed)', async (t) => {
  for (const balance of ['seats', 'roundrobin']) {
    const r = await randomLoad(t, balance);
    t.log(`${balance}: ${r.checkouts} checkouts, ${r.granted} granted, ${r.received} denied, ${r.falseDenied} false denials`);
    t.true(r.granted > 0 && r.received > 0, `${balance}: the load filled the servers and freed seats`);
  }
});
