/**
 * The server side's SO_KEEPALIVE is set by the sweeper once a connection has lived a second (four setsockopt calls
 * that a short transaction never needs), and at connect for a short `tcp_keepalive`. Read from the kernel: in
 * /proc/net/tcp an idle socket with keep-alive on has its keep-alive timer armed (`tr` = 2).
 */
import { readFileSync } from 'node:fs';
import test, { type ExecutionContext } from 'ava';
import { startEcho } from '../helpers/backend.ts';
import { connectClient, startProxy } from '../helpers/proxy.ts';
import { waitFor } from '../helpers/wait.ts';

const linux = process.platform === 'linux' ? test : test.skip;

/** The `tr` (active timer) field of the IPv4 socket from local port `local` to remote port `remote`, or null. */
function timerOf(local: number, remote: number): number | null {
  const hex = (p: number): string => p.toString(16).toUpperCase().padStart(4, '0');
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6) continue;
    if (f[1]!.endsWith(`:${hex(local)}`) && f[2]!.endsWith(`:${hex(remote)}`)) return Number.parseInt(f[5]!.split(':')[0]!, 16);
  }
  return null;
}

async function openThrough(t: ExecutionContext, tcpKeepalive: number) {
  const b = await startEcho(t);
  // idle 20s: the sweeper's idle tick is 2s, so the deferred keep-alive comes within about 3s.
  const rt = await startProxy(t, { pools: [{ name: 'p', tcpKeepalive, timeouts: { idle: 20_000 }, servers: [{ name: 'a', port: b.port }] }] });
  const c = await connectClient(t, rt.port('p'));
  c.write('x');
  await new Promise((r) => c.once('data', r));
  const conn = [...rt.live][0]!;
  const u = conn.upstream!;
  return { b, u, openedAt: Date.now() };
}

linux('a long tcp_keepalive reaches the server side within a few seconds, not at connect', async (t) => {
  const { b, u, openedAt } = await openThrough(t, 60_000);
  const first = timerOf(u.localPort!, b.port);
  t.not(first, null, 'the server-side socket is in /proc/net/tcp');
  // Only meaningful while the connection is younger than the deferral (a stalled test process proves nothing).
  if (Date.now() - openedAt < 800) t.is(first, 0, 'no keep-alive timer right after connect');
  await waitFor(() => timerOf(u.localPort!, b.port) === 2, { timeout: 10_000, what: 'keep-alive timer armed' });
  t.pass();
});

linux('a short tcp_keepalive is set at connect', async (t) => {
  const { b, u } = await openThrough(t, 5_000);
  await waitFor(() => timerOf(u.localPort!, b.port) === 2, { timeout: 5_000, what: 'keep-alive timer armed' });
  t.pass();
});
