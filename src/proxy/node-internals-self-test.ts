/**
 * The start-up self-test of node-internals.ts, once per process before its first listener opens: two loopback
 * connections relay a line each way through what forwarding uses. One is raw both ends (a listener that hands over
 * bare handles, RawSocket connect, write, read, half-close, close); on the other the accepting side is a net.Socket
 * reading through the `onread` fields. If anything is missing, fails or hangs, the internals are turned off for the
 * process (plain net.Socket from then on) with one warning: a Node whose internals changed runs slower, not wrong.
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import type { Logger } from '../common/logger.ts';
import { within } from '../common/within.ts';
import { disableNodeInternals, interceptAccept, internalsOff, internalsSwitchedOff, setSocketOnread } from './node-internals.ts';
import { RawSocket } from './raw-socket.ts';
import { nextReadBuffer, sharedReadBuffer } from './relay.ts';

const LINE = 'licproxy node-internals self-test\n';
/** Loopback answers in well under a millisecond; this only bounds a hang (the process is starting, not serving). */
const TIMEOUT_MS = 3_000;

let outcome: Promise<void> | null = null;

/** Runs the self-test once per process (later calls wait for the first); never throws. */
export function checkNodeInternals(log: Logger): Promise<void> {
  outcome ??= run(log);
  return outcome;
}

async function run(log: Logger): Promise<void> {
  if (internalsSwitchedOff) {
    log.info({ sockets: 'net.Socket', why: internalsOff }, `forwarding on plain net.Socket (${internalsOff})`);
    return;
  }
  const failure = internalsOff
    ? internalsOff
    : await selfTest().then(
        () => null,
        (err: unknown) => (err instanceof Error ? err.message : String(err)),
      );
  if (failure === null) {
    log.debug({ sockets: 'raw' }, 'node internals self-test passed: forwarding on raw TCP handles');
    return;
  }
  disableNodeInternals(failure);
  log.warn(
    { sockets: 'net.Socket', why: failure, node: process.version },
    `Node ${process.version}: its internals did not pass licproxy's self-test (${failure}): forwarding on plain net.Socket (same behaviour, more CPU per connection; LICPROXY_RAW_HANDLES=0 says so without this warning)`,
  );
}

async function selfTest(): Promise<void> {
  const open: { destroy(): unknown }[] = [];
  const srv = createServer({ allowHalfOpen: true, pauseOnConnect: true });
  try {
    const work = (async () => {
      let onreadSet = false;
      srv.on('connection', (s: Socket) => {
        open.push(s);
        onreadSet = setSocketOnread(s, sharedReadBuffer, (n, buf) => s.write(Buffer.from(buf.subarray(0, n))), nextReadBuffer);
        if (!onreadSet) s.on('data', (d: Buffer) => s.write(d));
        s.on('end', () => s.end());
        s.on('error', () => {});
        s.resume();
      });
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        // exclusive: in a cluster worker, a listener of its own, not one shared through the primary (which would
        // hand this test's connections to any worker listening on 127.0.0.1:0, a test's frontend among them).
        srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, resolve);
      });
      let rawAccepted = 0;
      // The first connection is taken raw, the second left to net.Server.
      const intercepted = interceptAccept(srv, (h) => {
        if (rawAccepted > 0) return false;
        rawAccepted++;
        const s = RawSocket.accepted(h);
        open.push(s);
        s.setReader(((n: number, buf: Uint8Array) => s.write(Buffer.from(buf.subarray(0, n)))) as never);
        s.on('end', () => s.end());
        s.on('error', () => {});
        s.resume();
        return true;
      });
      if (!intercepted) throw new Error('the listening socket has no handle to take connections from');
      const port = (srv.address() as AddressInfo).port;

      const rawEcho = await new Promise<string>((resolve, reject) => {
        let got = '';
        const c = RawSocket.connect('127.0.0.1', port, true, 0, ((n: number, buf: Uint8Array) => {
          got += Buffer.from(buf.subarray(0, n)).toString('latin1');
          return true;
        }) as never);
        if (c === null) return reject(new Error('RawSocket.connect refused a literal address'));
        open.push(c);
        c.on('connect', () => c.end(LINE));
        c.on('error', reject);
        c.on('end', () => resolve(got));
      });
      if (rawAccepted !== 1) throw new Error('the listener did not hand over the connection');
      if (rawEcho !== LINE) throw new Error(`raw echo ${JSON.stringify(rawEcho.slice(0, 60))}`);

      const netEcho = await new Promise<string>((resolve, reject) => {
        let got = '';
        const c = connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => c.end(LINE));
        open.push(c);
        c.setEncoding('latin1').on('data', (d: string) => (got += d));
        c.on('error', reject);
        c.on('end', () => resolve(got));
      });
      if (!onreadSet) throw new Error("net.Socket's onread fields were not found");
      if (netEcho !== LINE) throw new Error(`onread echo ${JSON.stringify(netEcho.slice(0, 60))}`);
    })();
    await within(work, TIMEOUT_MS);
  } finally {
    for (const s of open) s.destroy();
    srv.close();
  }
}
