/**
 * The server side's SO_KEEPALIVE is set by the sweeper once a connection has lived a second (four setsockopt calls
 * that a short transaction never needs), and at connect for a short `tcp_keepalive`. Read from the kernel: in
 * /proc/net/tcp an idle socket with keep-alive on has its keep-alive timer armed (`tr` = 2).
 */
import { readFileSync } from 'node:fs';
import test, { type ExecutionContext } from 'ava';
import { startEcho } from '../helpers/backend.ts';
import { connectClient, startProxy } from '../helpers/proxy.ts';
import { nativeRelay } from '../../src/proxy/native-relay.ts';
import { waitFor } from '../helpers/wait.ts';

const linux = process.platform === 'linux' ? test : test.skip;

/**
 * The `tr:tm->when` field of the IPv4 socket from local port `local` to remote port `remote` (null: no such socket):
 * the active timer and when it expires, in clock ticks (1/100 s).
 */
function timerOf(local: number, remote: number): { tr: number; when: number } | null {
  const hex = (p: number): string => p.toString(16).toUpperCase().padStart(4, '0');
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6) continue;
    if (f[1]!.endsWith(`:${hex(local)}`) && f[2]!.endsWith(`:${hex(remote)}`)) {
      const [tr, when] = f[5]!.split(':') as [string, string];
      return { tr: Number.parseInt(tr, 16), when: Number.parseInt(when, 16) };
    }
  }
  return null;
}

/**
 * The keep-alive timer is armed: timer 2 due in more than a second. Timer 2 is also a delayed ACK's (due in tens
 * of ms); keep-alive times here are 5 s and more.
 */
function keepAliveArmed(local: number, remote: number): boolean {
  const timer = timerOf(local, remote);
  return timer !== null && timer.tr === 2 && timer.when > 100;
}

async function openThrough(t: ExecutionContext, tcpKeepalive: number) {
  const b = await startEcho(t);
  // idle 20s: the sweeper's idle tick is 2s, so the deferred keep-alive comes within about 3s.
  const rt = await startProxy(t, { pools: [{ name: 'p', tcpKeepalive, timeouts: { idle: 20_000 }, servers: [{ name: 'a', port: b.port }] }] });
  // Before the connect: the connection is at most this old (a stall while connecting would make it older).
  const openedAt = Date.now();
  const c = await connectClient(t, rt.port('p'));
  c.write('x');
  await new Promise((r) => c.once('data', r));
  const conn = [...rt.live][0]!;
  // Read now: once relayed natively (native-relay.ts) the connection's socket objects are gone.
  const u = { localPort: conn.upstream!.localPort };
  // Then enough exchanges for the native relay to take the connection (where built): the deferred keep-alive of a
  // long tcp_keepalive is then set by it.
  for (let i = 0; tcpKeepalive >= 10_000 && i < 10; i++) {
    c.write('x');
    await new Promise((r) => c.once('data', r));
  }
  return { b, u, openedAt, conn };
}

linux('a long tcp_keepalive reaches the server side within a few seconds, not at connect', async (t) => {
  const { b, u, openedAt, conn } = await openThrough(t, 60_000);
  const first = timerOf(u.localPort!, b.port);
  t.not(first, null, 'the server-side socket is in /proc/net/tcp');
  // Only meaningful while the connection is younger than the deferral (a stalled test process proves nothing).
  if (Date.now() - openedAt < 800) t.false(keepAliveArmed(u.localPort!, b.port), 'no keep-alive timer right after connect');
  await waitFor(() => keepAliveArmed(u.localPort!, b.port), { timeout: 10_000, what: 'keep-alive timer armed' });
  if (nativeRelay !== null) t.true(conn.native, 'set by the native relay');
  t.pass();
});

linux('a short tcp_keepalive is set at connect', async (t) => {
  const { b, u } = await openThrough(t, 5_000);
  await waitFor(() => keepAliveArmed(u.localPort!, b.port), { timeout: 5_000, what: 'keep-alive timer armed' });
  t.pass();
});
