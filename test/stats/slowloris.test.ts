import net from 'node:net';
import test from 'ava';
import { waitFor } from '../helpers/wait.ts';
import { request, startStats } from '../helpers/stats.ts';

const CONNECTIONS = 200;
const HEADERS_TIMEOUT = 2_000;

test('200 slowloris connections do not stop /health and are closed at the header timeout', async (t) => {
  const { base } = await startStats(t, { limits: { headersTimeoutMs: HEADERS_TIMEOUT, requestTimeoutMs: HEADERS_TIMEOUT } });
  interface Slow { sock: net.Socket; openedAt: number; closedAt: number | null; got: string }
  const slow: Slow[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    // Before the connect: the server's header timer starts after it (a lower bound on the lifetime below).
    const openedAt = Date.now();
    const sock = net.connect(base.port, base.host);
    const s: Slow = { sock, openedAt: 0, closedAt: null, got: '' };
    sock.on('connect', () => {
      s.openedAt = openedAt;
      sock.write('GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    });
    sock.on('data', (d) => (s.got += d.toString()));
    sock.on('error', () => {});
    sock.on('close', () => (s.closedAt = Date.now()));
    slow.push(s);
  }
  t.teardown(() => slow.forEach((s) => s.sock.destroy()));
  // One byte a second on every open connection, never completing the headers; bounded to 8 ticks.
  let ticks = 0;
  const drip = setInterval(() => {
    if (++ticks > 8) return clearInterval(drip);
    for (const s of slow) if (s.closedAt === null && s.openedAt > 0) s.sock.write('a');
  }, 1_000);
  t.teardown(() => clearInterval(drip));
  await waitFor(() => slow.every((s) => s.openedAt > 0), { timeout: 30_000, what: 'all slow connections open' });

  // While they hold their sockets (until just before the header timeout), /health answers, every 200 ms. How fast
  // is printed, not asserted (a loaded machine stretches it).
  const latencies: number[] = [];
  const until = Date.now() + HEADERS_TIMEOUT - 500;
  await waitFor(async () => {
    const t0 = Date.now();
    const r = await request(base, '/health', { timeoutMs: 5_000 });
    latencies.push(Date.now() - t0);
    t.is(r.status, 200);
    return Date.now() >= until;
  }, { interval: 200, timeout: 30_000, what: 'health probes during the attack' });
  t.log(`/health latencies under slowloris (ms): ${latencies.join(', ')}`);

  // The drip stops after 8 ticks; the header timeout must have closed them all by then or soon after.
  await waitFor(() => slow.every((s) => s.closedAt !== null), { timeout: 30_000, what: 'slow connections closed by the server' });
  const lifetimes = slow.map((s) => s.closedAt! - s.openedAt);
  const min = Math.min(...lifetimes);
  const max = Math.max(...lifetimes);
  t.log(`slow connections closed after ${min}..${max} ms (headersTimeout ${HEADERS_TIMEOUT} ms); 408 answers: ${slow.filter((s) => s.got.startsWith('HTTP/1.1 408')).length}`);
  t.true(min >= HEADERS_TIMEOUT - 1, `closed by the header timeout, not before (min ${min} ms)`);
  t.true(slow.every((s) => !s.got.includes('200 OK')), 'no slow request was served');
});
