/**
 * A bound server dies (its licd is SIGKILLed; a tcp check with short intervals marks it DOWN): its clients'
 * next connections are balanced anew and succeed on another server, while the clients of the other servers keep
 * both their bindings and their open connections.
 */
import test from 'ava';
import { createMonitorFactory } from '../../../src/health/health-monitor.ts';
import { waitFor } from '../../helpers/wait.ts';
import { clientAddress, handleOf, licdProxy, Line, runBounded, spawnLicds } from './support.ts';

const NAMES = ['primary', 'secondary', 'tertiary'];
const CLIENTS = 60;

interface Session {
  addr: string;
  server: string;
  lic: Line;
  tok: Line;
}

function serverOfHandle(handle: string): string {
  return handle.slice(0, handle.lastIndexOf('.'));
}

/** A client checks out and draws tokens; both connections are left open (a license held). */
async function hold(licPort: number, tokPort: number, addr: string): Promise<Session> {
  const lic = await Line.connect(licPort, addr);
  const handle = handleOf(await lic.request('CHECKOUT LS-DYNA'));
  if (!handle) throw new Error('checkout failed');
  const tok = await Line.connect(tokPort, addr);
  const g = await tok.request(`TOKENS ${handle} 2`);
  if (!g?.startsWith('GRANTED')) throw new Error(`tokens: ${g}`);
  return { addr, server: serverOfHandle(handle), lic, tok };
}

test('bound server killed: its clients move on their next connection; other clients keep bindings and connections', async (t) => {
  t.timeout(120_000);
  const licds = await spawnLicds(t, NAMES);
  const rt = await licdProxy(t, licds, NAMES, {
    by: 'source',
    pool: {
      check: { type: 'tcp', port: 'license', interval: 200, fastInterval: 100, downInterval: 500, timeout: 300, rise: 1, fall: 2 },
    },
    runtime: { monitorFactory: createMonitorFactory() },
  });
  const pool = rt.pool('lic')!;
  await waitFor(() => pool.servers.every((s) => s.status === 'UP'), { timeout: 20_000, what: 'servers UP' });
  const lic = rt.port('license');
  const tok = rt.port('tokens');

  const sessions = await runBounded(CLIENTS, 20, 60_000, (i) => hold(lic, tok, clientAddress(31, i)));
  t.teardown(() => sessions.forEach((s) => (s.lic.destroy(), s.tok.destroy())));
  const victim = 'primary';
  const onVictim = sessions.filter((s) => s.server === victim);
  const others = sessions.filter((s) => s.server !== victim);
  t.true(onVictim.length > 5 && others.length > 10, `clients on every server (${onVictim.length} on ${victim})`);

  licds[0]!.child.kill('SIGKILL');
  await licds[0]!.exited;
  // At once, likely before a check notices: the bound server refuses, the retries go back to it (affinity) until
  // the passive failures reach `fall` and mark it DOWN, which drops the binding; the last retries go elsewhere.
  const early = await hold(lic, tok, onVictim[0]!.addr);
  early.lic.destroy();
  early.tok.destroy();
  t.not(early.server, victim, 'the connection made right after the kill succeeded on another server');
  await waitFor(() => pool.server(victim)!.status === 'DOWN', { timeout: 20_000, what: `${victim} DOWN` });
  t.is(pool.snapshot().servers.find((s) => s.name === victim)!.bindings, 0, 'its bindings are dropped');
  t.is(
    pool.snapshot().servers.reduce((n, s) => n + s.bindings, 0),
    others.length + 1,
    'the other bindings are untouched (plus the early client, rebound)',
  );

  // The other clients' open connections still work, on their server.
  for (const s of others) {
    t.is(await s.lic.request('HEARTBEAT'), 'OK', `${s.addr} license connection alive`);
    t.regex((await s.tok.request('HEARTBEAT')) ?? '', /^OK/, `${s.addr} token connection alive`);
  }
  // And their new connections follow their binding.
  await runBounded(others.length, 20, 60_000, async (i) => {
    const s = others[i]!;
    const again = await hold(lic, tok, s.addr);
    again.lic.destroy();
    again.tok.destroy();
    t.is(again.server, s.server, `${s.addr} stays on ${s.server}`);
  });
  // The victim's clients: their next connections are balanced anew and succeed elsewhere.
  await runBounded(onVictim.length, 20, 60_000, async (i) => {
    const s = onVictim[i]!;
    const again = await hold(lic, tok, s.addr);
    again.lic.destroy();
    again.tok.destroy();
    t.not(again.server, victim, `${s.addr} moved`);
  });
});
