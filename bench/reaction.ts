/**
 * How fast the proxy passes on a reset, each way: the figures test/proxy/forwarding.test.ts used to assert ("within
 * 100 ms", "at once"); the tests now only check that it happens.
 *
 *   node --import tsx bench/reaction.ts [--rounds 50]
 *
 * One process: a backend, the proxy (ProxyRuntime, as the tests run it) and the client. Baseline, in the same run:
 * the same reset sent straight to the backend, no proxy in the path, so the extra the proxy adds reads as a
 * difference whatever else the machine is doing. Bounded: --rounds, and a deadline on every wait.
 */
import net, { type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { ProxyRuntime } from '../src/proxy/runtime.ts';
import { makeConfig } from '../test/helpers/proxy.ts';
import { fmt } from './lib/summary.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '50' } } });
const ROUNDS = Math.min(1_000, Math.max(3, Number(values.rounds)));
const DEADLINE_MS = 10_000;

/** A backend that tells when each connection closes, and can reset one once it has read a byte. */
interface Backend {
  port: number;
  /** Resolves once connection `n` has read its first byte. */
  read: (n: number) => Promise<void>;
  /** Resolves with when connection `n` closed. */
  closed: (n: number) => Promise<number>;
  close(): void;
}

async function backend(resetOnData: boolean): Promise<Backend> {
  const closedAt: number[] = [];
  const readers = new Map<number, () => void>();
  const hasRead = new Set<number>();
  const waiters = new Map<number, (at: number) => void>();
  let next = 0;
  const server = net.createServer((s) => {
    const id = next++;
    s.on('error', () => {});
    s.once('data', () => {
      hasRead.add(id);
      readers.get(id)?.();
      if (resetOnData) s.resetAndDestroy();
    });
    s.on('close', () => {
      closedAt[id] = performance.now();
      waiters.get(id)?.(closedAt[id]!);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    read: (n) =>
      hasRead.has(n)
        ? Promise.resolve()
        : new Promise((resolve, reject) => {
            readers.set(n, resolve);
            setTimeout(() => reject(new Error(`connection ${n} read nothing within ${DEADLINE_MS} ms`)), DEADLINE_MS).unref();
          }),
    closed: (n) =>
      closedAt[n] !== undefined
        ? Promise.resolve(closedAt[n]!)
        : new Promise((resolve, reject) => {
            waiters.set(n, resolve);
            setTimeout(() => reject(new Error(`connection ${n} not closed within ${DEADLINE_MS} ms`)), DEADLINE_MS).unref();
          }),
    close: () => server.close(),
  };
}

function connect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', (e) => (s.connecting ? reject(e) : undefined));
  });
}

function closedOf(s: Socket): Promise<number> {
  return new Promise((resolve, reject) => {
    s.on('close', () => resolve(performance.now()));
    setTimeout(() => reject(new Error(`client not closed within ${DEADLINE_MS} ms`)), DEADLINE_MS).unref();
  });
}

/** Client resets; ms until the backend's side closes. */
async function clientReset(port: number, b: Backend, n: number): Promise<number> {
  const c = await connect(port);
  c.write('x');
  // Once the backend has read it (a RST over unread data reads as data then EOF on Linux: a FIN, not a reset).
  await b.read(n);
  const at = performance.now();
  c.resetAndDestroy();
  return (await b.closed(n)) - at;
}

/** Backend resets when it reads a byte; ms from the client's write to its side closing (includes the trip there). */
async function serverReset(port: number): Promise<number> {
  const c = await connect(port);
  c.on('error', () => {});
  const closed = closedOf(c);
  const at = performance.now();
  c.write('x');
  return (await closed) - at;
}

const quiet = await backend(false);
const resetting = await backend(true);
const rt = new ProxyRuntime(
  makeConfig({
    pools: [
      { name: 'quiet', servers: [{ name: 'a', port: quiet.port }] },
      { name: 'resetting', servers: [{ name: 'a', port: resetting.port }] },
    ],
  }),
);
await rt.start();

const direct = { client: [] as number[], server: [] as number[] };
const proxied = { client: [] as number[], server: [] as number[] };
let quietN = 0;
for (let i = 0; i < ROUNDS; i++) {
  // Alternated, so that drift in the machine's load hits both alike.
  direct.client.push(await clientReset(quiet.port, quiet, quietN++));
  proxied.client.push(await clientReset(rt.port('quiet'), quiet, quietN++));
  direct.server.push(await serverReset(resetting.port));
  proxied.server.push(await serverReset(rt.port('resetting')));
}
await rt.stop(0);
quiet.close();
resetting.close();

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const row = (what: string, d: number[], p: number[]) =>
  `| ${what} | ${fmt(pct(d, 0.5))} / ${fmt(pct(d, 0.9))} ms | ${fmt(pct(p, 0.5))} / ${fmt(pct(p, 0.9))} ms | ${fmt(pct(p, 0.5) - pct(d, 0.5))} ms |`;
console.log('# Reset propagation\n');
console.log(`command: \`node --import tsx bench/reaction.ts --rounds ${ROUNDS}\``);
console.log(`${ROUNDS} rounds, direct and proxied alternated; backend, proxy and client in one process.\n`);
console.log('| reset | direct (median / p90) | through the proxy (median / p90) | proxy adds (median) |');
console.log('|---|---:|---:|---:|');
console.log(row('client RST -> backend side closed', direct.client, proxied.client));
console.log(row('backend RST on first byte -> client side closed (from the write)', direct.server, proxied.server));
