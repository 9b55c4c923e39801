/**
 * The native relay's start-up self-test, once per process after node-internals' own: a loopback client, through a
 * pair handed to the relay, to an echo server that answers a line and closes. The addon is built for the Node it
 * was compiled with; N-API and libuv keep their ABI within a major version line, but a relay that cannot pass one
 * line is turned off for the process with one warning (connections then stay on the JavaScript path).
 */
import { connect, createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Logger } from '../common/logger.ts';
import { within } from '../common/within.ts';
import { disableNativeRelay, nativeRelay, nativeRelayOff, RelayStat, type NativeRelay } from './native-relay.ts';
import { rawTcp } from './node-internals.ts';

const LINE = 'licproxy native relay self-test\n';
const TIMEOUT_MS = 3_000;

let outcome: Promise<void> | null = null;

/** Runs once per process (later calls wait for the first); never throws. */
export function checkNativeRelay(log: Logger): Promise<void> {
  outcome ??= run(log);
  return outcome;
}

async function run(log: Logger): Promise<void> {
  const relay = nativeRelay;
  if (relay === null || rawTcp === null) {
    if (rawTcp === null) disableNativeRelay('raw TCP handles are off');
    log.info({ nativeRelay: false, why: nativeRelayOff }, `native relay off (${nativeRelayOff}): every byte is relayed in JavaScript`);
    return;
  }
  try {
    await selfTest(relay);
    log.debug({ nativeRelay: true }, 'native relay self-test passed');
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    disableNativeRelay(`self-test failed: ${why}`);
    log.warn({ nativeRelay: false, why, node: process.version }, `native relay did not pass its self-test on Node ${process.version} (${why}): every byte is relayed in JavaScript`);
  }
}

function listen(srv: NetServer): Promise<number> {
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    // exclusive: in a cluster worker, a listener of its own (see node-internals-self-test.ts).
    srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => resolve((srv.address() as AddressInfo).port));
  });
}

function fdOf(s: Socket): number {
  const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('a socket without a descriptor');
  return fd;
}

async function selfTest(relay: NativeRelay): Promise<void> {
  const open: Socket[] = [];
  const echo = createServer({ allowHalfOpen: true }, (s) => {
    open.push(s);
    let got = '';
    s.setEncoding('latin1').on('data', (d: string) => (got += d));
    s.on('end', () => s.end(got));
    s.on('error', () => {});
  });
  const front = createServer({ allowHalfOpen: true, pauseOnConnect: true });
  try {
    const work = (async () => {
      const [echoPort, frontPort] = await Promise.all([listen(echo), listen(front)]);
      const accepted = new Promise<Socket>((resolve) => front.once('connection', resolve));
      const client = connect({ host: '127.0.0.1', port: frontPort, allowHalfOpen: true });
      open.push(client);
      client.on('error', () => {});
      const side = await accepted;
      open.push(side);
      const up = connect({ host: '127.0.0.1', port: echoPort, allowHalfOpen: true });
      open.push(up);
      up.pause();
      await new Promise<void>((resolve, reject) => up.once('connect', resolve).once('error', reject));
      // The counters are read in the callback: the shared array is rewritten by the next pair that ends.
      const ended = new Promise<number[]>((resolve) => relay.adopt(fdOf(side), fdOf(up), { nativeEnded: () => resolve([...relay.stats]) }));
      side.destroy();
      up.destroy();
      const answer = new Promise<string>((resolve, reject) => {
        let got = '';
        client.setEncoding('latin1').on('data', (d: string) => (got += d));
        client.once('end', () => resolve(got)).once('error', reject);
      });
      client.end(LINE);
      const got = await answer;
      if (got !== LINE) throw new Error(`echo ${JSON.stringify(got.slice(0, 60))}`);
      client.destroy();
      const st = await ended;
      if (st[RelayStat.ClientRead] !== LINE.length || st[RelayStat.ClientWritten] !== LINE.length) {
        throw new Error(`counted ${st[RelayStat.ClientRead]}/${st[RelayStat.ClientWritten]} bytes of ${LINE.length}`);
      }
    })();
    await within(work, TIMEOUT_MS);
  } finally {
    for (const s of open) s.destroy();
    echo.close();
    front.close();
  }
}
