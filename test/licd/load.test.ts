import test from 'ava';
import { LineClient, startLicd } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';
import { prng } from '../helpers/prng.ts';

const CLIENTS = 500;
/** The load runs at least this long, and on until it has done enough of everything (a busy machine is slower)... */
const DURATION_MS = 4_000;
/** ...but never longer than this. */
const MAX_DURATION_MS = 60_000;
const FEATURES = [
  { name: 'LS-DYNA', count: 60 },
  { name: 'PRE-POST', count: 5 },
  { name: 'MPPDYNA', count: 400, kind: 'tokens' as const },
];


test('seat invariant under load: 500 clients checking out, drawing tokens, checking in and dying abruptly', async (t) => {
  const licd = await startLicd({ features: FEATURES });
  t.teardown(licd.stop);
  const open = new Set<LineClient>();
  t.teardown(() => {
    for (const c of open) c.destroy();
  });
  const started = Date.now();
  const violations: string[] = [];
  let samples = 0;
  const sampler = setInterval(() => {
    samples++;
    for (const f of licd.server.status().features) {
      const sum = f.users.filter((u) => !u.queued).reduce((a, u) => a + u.count, 0);
      if (f.inUse > f.issued) violations.push(`${f.name} in use ${f.inUse} > ${f.issued}`);
      if (sum !== f.inUse) violations.push(`${f.name} in use ${f.inUse} but users hold ${sum}`);
    }
  }, 50);
  t.teardown(() => clearInterval(sampler));
  const stats = { granted: 0, denied: 0, tokens: 0, queued: 0, abrupt: 0, sessions: 0 };
  const enough = () => stats.granted > 500 && stats.tokens > 100 && stats.denied > 0 && samples >= 10;
  let running = true;
  const stillRunning = (): boolean => {
    const elapsed = Date.now() - started;
    if (running && (elapsed >= MAX_DURATION_MS || (elapsed >= DURATION_MS && enough()))) running = false;
    return running;
  };

  const connect = async (port: number) => {
    const c = await LineClient.connect(port);
    open.add(c);
    void c.closed.then(() => open.delete(c));
    return c;
  };

  const worker = async (id: number) => {
    const rnd = prng(id + 1);
    const pick = (n: number) => Math.floor(rnd() * n);
    while (stillRunning()) {
      stats.sessions++;
      const c = await connect(licd.ports.license);
      let tk: LineClient | null = null;
      const handles: string[] = [];
      try {
        await c.request(`HELLO user=u${id} host=h${id % 17}`);
        const steps = 1 + pick(10);
        for (let i = 0; i < steps && stillRunning(); i++) {
          const r = pick(10);
          if (r < 4) {
            const feature = pick(4) === 0 ? 'PRE-POST' : 'LS-DYNA';
            const queue = pick(6) === 0;
            let a = await c.request(`CHECKOUT ${feature} count=${1 + pick(3)}${queue ? ' queue=1' : ''}`);
            if (a.startsWith('QUEUED')) {
              stats.queued++;
              a = await c.next(150).catch(() => 'gave up');
              if (a === 'gave up') break; // leave while queued: the connection ends below
            }
            const m = /handle=(\S+)/.exec(a);
            if (m) {
              stats.granted++;
              handles.push(m[1]!);
            } else stats.denied++;
          } else if (r < 6 && handles.length) {
            tk ??= await connect(licd.ports.tokens);
            const a = await tk.request(`TOKENS ${handles[0]} ${1 + pick(32)}`);
            if (a.startsWith('GRANTED')) stats.tokens++;
            else if (a === 'ERR UNKNOWN_HANDLE') break;
          } else if (r < 7 && handles.length > 1) {
            await c.request(`CHECKIN ${handles.pop()}`);
          } else if (r < 8 && tk) {
            await tk.request(`RELEASE ${1 + pick(4)}`);
          } else {
            await c.request('HEARTBEAT');
          }
        }
      } catch {
        // the daemon ended a session (its handle checked in while the token connection talked): carry on
      }
      const how = pick(4);
      if (how === 0) await c.request('QUIT').catch(() => '');
      else if (how === 1) c.end();
      else if (how === 2) (c.reset(), stats.abrupt++);
      else (c.destroy(), stats.abrupt++);
      if (tk && pick(2) === 0) tk.reset();
      else if (tk) tk.end();
    }
  };

  await Promise.all(Array.from({ length: CLIENTS }, (_, i) => worker(i)));
  clearInterval(sampler);
  for (const c of open) c.destroy();
  t.deepEqual(violations.slice(0, 5), []);
  t.true(enough(), `within ${MAX_DURATION_MS} ms: ${JSON.stringify(stats)}; sampled ${samples} times`);
  await waitFor(
    () => {
      const s = licd.server.status();
      return s.features.every((f) => f.inUse === 0 && f.queued === 0) && s.connections.license === 0 && s.connections.tokens === 0;
    },
    { timeout: 15_000, what: 'every seat and token free at the end' },
  );
  t.log(`${JSON.stringify(stats)}; ${samples} samples`);
});
