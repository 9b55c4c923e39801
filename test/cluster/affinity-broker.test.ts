import test from 'ava';
import { AffinityBroker } from '../../src/proxy/cluster/affinity-broker.ts';
import { SourceAffinity } from '../../src/proxy/affinity/source-affinity.ts';
import { ProxyRuntime } from '../../src/proxy/runtime.ts';
import { makeConfig } from '../helpers/proxy.ts';

/** A primary's runtime (no listener) with one pool bound by source, and a broker whose answers are recorded. */
async function primary(t: import('ava').ExecutionContext) {
  const config = makeConfig({
    pools: [{ name: 'p', affinity: { by: 'source', ttl: 60_000, maxBindings: 100 }, servers: [{ name: 'a', port: 1 }, { name: 'b', port: 2 }] }],
  });
  const rt = new ProxyRuntime(config, { listen: false });
  await rt.start();
  t.teardown(() => rt.stop(0));
  const answers: [worker: number, id: number, server: string | null][] = [];
  const broker = new AffinityBroker(rt, (w, id, s) => answers.push([w, id, s]));
  const table = (rt.pool('p')!.affinity as SourceAffinity).table;
  return { rt, broker, answers, table };
}

test('a key being decided makes later asks wait for the decision, from any worker', async (t) => {
  const { broker, answers, table } = await primary(t);
  broker.ask(1, 10, 'p', '10.0.0.1');
  t.deepEqual(answers, [[1, 10, null]], 'a miss: the asker balances');
  broker.ask(2, 20, 'p', '10.0.0.1');
  broker.ask(1, 11, 'p', '10.0.0.1');
  t.is(answers.length, 1, 'the others wait');
  broker.bind(1, 10, 'p', '10.0.0.1', 'b');
  t.deepEqual(answers.slice(1), [[2, 20, 'b'], [1, 11, 'b']]);
  t.is(broker.held, 3);
  const b = table.acquire('10.0.0.1')!;
  t.is(b.conns, 4);
  table.release(b);
  for (const [w, id] of [[1, 10], [2, 20], [1, 11]] as const) broker.release(w, id);
  t.is(broker.held, 0);
  t.is(table.acquire('10.0.0.1')?.server.name, 'b', 'the binding outlives its connections (ttl)');
});

test('a decision of no server passes the key on to the next asker', async (t) => {
  const { broker, answers } = await primary(t);
  broker.ask(1, 1, 'p', '10.0.0.2');
  broker.ask(2, 2, 'p', '10.0.0.2');
  broker.bind(1, 1, 'p', '10.0.0.2', null);
  t.deepEqual(answers, [[1, 1, null], [2, 2, null]]);
  broker.bind(2, 2, 'p', '10.0.0.2', 'a');
  broker.ask(1, 3, 'p', '10.0.0.2');
  t.deepEqual(answers.at(-1), [1, 3, 'a']);
});

test('a dead worker releases what its connections held and hands over what it was deciding', async (t) => {
  const { broker, answers, table } = await primary(t);
  broker.ask(1, 1, 'p', '10.0.0.3');
  broker.bind(1, 1, 'p', '10.0.0.3', 'a');
  broker.ask(1, 2, 'p', '10.0.0.4');
  broker.ask(2, 3, 'p', '10.0.0.4');
  broker.ask(1, 4, 'p', '10.0.0.4');
  broker.workerGone(1);
  t.deepEqual(answers.at(-1), [2, 3, null], 'worker 2 decides now; worker 1\'s waiter is dropped');
  t.is(answers.filter(([w]) => w === 1).length, 2);
  t.is(broker.held, 0);
  const b = table.acquire('10.0.0.3')!;
  t.is(b.conns, 1, 'only the acquire of this test counts');
});

test('a binding to a server that went DOWN is not handed out', async (t) => {
  const { rt, broker, answers } = await primary(t);
  broker.ask(1, 1, 'p', '10.0.0.5');
  broker.bind(1, 1, 'p', '10.0.0.5', 'a');
  rt.server('p', 'a')!.setHealth('down', 'test');
  broker.ask(2, 2, 'p', '10.0.0.5');
  t.deepEqual(answers.at(-1), [2, 2, null]);
  broker.bind(2, 2, 'p', '10.0.0.5', 'b');
  broker.ask(1, 3, 'p', '10.0.0.5');
  t.deepEqual(answers.at(-1), [1, 3, 'b']);
});

test('a pool without a source table (reloaded) answers null at once', async (t) => {
  const { broker, answers } = await primary(t);
  broker.ask(1, 1, 'nope', '10.0.0.6');
  t.deepEqual(answers, [[1, 1, null]]);
});
