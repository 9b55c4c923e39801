/**
 * License clients of the balancer-pair scenario (test/helpers/ha-pair-lab.ts), run as a child process inside the
 * clients' network namespace (the test process cannot enter one):
 *
 *   node --import tsx test/helpers/ha-pair-clients.ts '<json ClientsSpec>'
 *
 * Every outcome is one JSON line on stdout, with `at` (Date.now(), the same clock as the test's):
 * - `probe`: a short checkout of the triad through the VIP every `probeEveryMs` (a fresh client, no resume):
 *   `{ ok, server }` or `{ ok: false, code }`; gives "kill -> first granted checkout".
 * - `bound`: one loop per source address: a license connection and a token connection from that address to the
 *   source-affinity pool (CHECKOUT, then TOKENS with the handle): `{ ok, server }`, or `{ misrouted: true }` when
 *   the token port answered UNKNOWN_HANDLE while the license session was still live (the two ports reached
 *   different servers), or `{ ok: false, code }` (`LICENSE_ENDED`: UNKNOWN_HANDLE because the license connection
 *   died with the killed instance).
 * - `held`: `held` clients of the client library (resume on) holding a triad seat: `granted`, `resumed`, `lost`.
 * - `summary` when stdin ends (or `seconds` pass): the held clients that still hold their handle, then they check in.
 */
import { LicenseClient } from '../../src/client/license-client.ts';
import { TokenClient } from '../../src/client/token-client.ts';

export interface ClientsSpec {
  vip: string;
  triadPort: number;
  seatsLicense: number;
  seatsTokens: number;
  /** Local source addresses of the bound clients (one loop each). */
  sources: string[];
  held: number;
  probeEveryMs: number;
  /** Hard stop, whatever the parent does. */
  seconds: number;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as ClientsSpec;
const say = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify({ at: Date.now(), ...o }) + '\n');
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
const codeOf = (err: unknown) => (err as { code?: string }).code ?? String(err);
let stopping = false;

async function probeLoop(): Promise<void> {
  while (!stopping) {
    const started = Date.now();
    let c: LicenseClient | undefined;
    try {
      c = await LicenseClient.connect(spec.vip, spec.triadPort, { resume: false, timeout: 1_000 });
      const { server } = await c.hello('probe', 'ws-probe');
      const g = await c.checkout('LS-DYNA');
      await c.checkin(g.handle);
      say({ k: 'probe', ok: true, server, started });
    } catch (err) {
      say({ k: 'probe', ok: false, code: codeOf(err), started });
    } finally {
      c?.destroy();
    }
    await pause(Math.max(0, spec.probeEveryMs - (Date.now() - started)));
  }
}

async function boundLoop(src: string): Promise<void> {
  const opts = { resume: false as const, timeout: 1_000, localAddress: src };
  while (!stopping) {
    let c: LicenseClient | undefined;
    let tok: TokenClient | undefined;
    let step = 'license';
    try {
      c = await LicenseClient.connect(spec.vip, spec.seatsLicense, opts);
      const { server } = await c.hello('bound', `ws-${src.replace(/\./g, '-')}`);
      const g = await c.checkout('SOLVER');
      step = 'tokens';
      tok = await TokenClient.open(spec.vip, spec.seatsTokens, { timeout: 1_000, localAddress: src });
      try {
        await tok.tokens(g.handle, 2);
      } catch (err) {
        if (codeOf(err) === 'UNKNOWN_HANDLE') {
          // Misrouted only if the license session still lives on its server (the CHECKIN is answered OK): the
          // token connection then reached another server. Otherwise the license connection died with the killed
          // instance and its server ended the grant, which is not a routing fault.
          const live = await c.checkin(g.handle).then(
            () => true,
            () => false,
          );
          say({ k: 'bound', src, ok: false, ...(live ? { misrouted: true } : { code: 'LICENSE_ENDED' }), server });
          continue;
        }
        throw err;
      }
      await tok.release(2);
      await c.checkin(g.handle);
      say({ k: 'bound', src, ok: true, server });
    } catch (err) {
      say({ k: 'bound', src, ok: false, step, code: codeOf(err) });
    } finally {
      tok?.destroy();
      c?.destroy();
      await pause(50);
    }
  }
}

async function heldClients(): Promise<() => Promise<void>> {
  const clients: { c: LicenseClient; handle: string; lost: boolean }[] = [];
  for (let i = 0; i < spec.held; i++) {
    // Retried: the pair may still be settling when the clients start.
    for (let attempt = 0; ; attempt++) {
      try {
        const c = await LicenseClient.connect(spec.vip, spec.triadPort, { timeout: 2_000 });
        await c.hello(`held${i}`, `ws-held${i}`);
        const g = await c.checkout('LS-DYNA');
        const entry = { c, handle: g.handle, lost: false };
        c.on('resumed', (r: { resumed: string[]; lost: { handle: string }[]; gap: number }) => {
          if (r.lost.some((l) => l.handle === entry.handle)) {
            entry.lost = true;
            say({ k: 'held', event: 'lost', i });
          } else say({ k: 'held', event: 'resumed', i, gap: r.gap });
        });
        c.on('lost', () => {
          entry.lost = true;
          say({ k: 'held', event: 'lost', i });
        });
        c.startHeartbeat(1_000, () => {});
        clients.push(entry);
        say({ k: 'held', event: 'granted', i });
        break;
      } catch (err) {
        if (attempt >= 20) throw err;
        await pause(250);
      }
    }
  }
  return async () => {
    const holding = clients.filter((e) => !e.lost && e.c.handles.includes(e.handle)).length;
    say({ k: 'summary', held: clients.length, holding, lost: clients.length - holding });
    await Promise.all(
      clients.map(async (e) => {
        try {
          e.c.stopHeartbeat();
          if (e.c.handles.includes(e.handle)) await e.c.checkin(e.handle);
          await e.c.quit();
        } catch {
          /* reported above */
        } finally {
          e.c.destroy();
        }
      }),
    );
  };
}

const finishHeld = await heldClients();
say({ k: 'ready' });
const loops = [probeLoop(), ...spec.sources.map((s) => boundLoop(s))];
await new Promise<void>((resolve) => {
  const timer = setTimeout(resolve, spec.seconds * 1_000);
  process.stdin.on('end', () => {
    clearTimeout(timer);
    resolve();
  });
  process.stdin.resume();
});
stopping = true;
await Promise.race([Promise.all(loops), pause(3_000)]);
await Promise.race([finishHeld(), pause(5_000)]);
say({ k: 'done' });
process.exit(0);
