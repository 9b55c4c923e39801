import test from 'ava';
import { connect } from 'node:net';
import { LineClient, startLicd, type InProcessLicd } from '../helpers/licd.ts';
import { waitFor } from '../helpers/wait.ts';
import { prng } from '../helpers/prng.ts';

const FEATURES = [
  { name: 'LS-DYNA', count: 4 },
  { name: 'MPPDYNA', count: 16, kind: 'tokens' as const },
];


function usage(licd: InProcessLicd): number[] {
  return licd.server.status().features.map((f) => f.inUse);
}

const ANSWER = /^(OK|GRANTED|DENIED|QUEUED|ERR [A-Z_]+)( |$)/;

test('malformed lines each get one well-formed answer and change no count', async (t) => {
  const licd = await startLicd({ features: FEATURES });
  t.teardown(licd.stop);
  const holder = await LineClient.connect(licd.ports.license);
  t.teardown(() => holder.destroy());
  const h = /handle=(\S+)/.exec(await holder.request('CHECKOUT LS-DYNA count=2'))![1]!;
  const before = usage(licd);
  const c = await LineClient.connect(licd.ports.license);
  t.teardown(() => c.destroy());
  const lines = [
    'CHECKOUT LS-DYNA\x00',
    'CHECKOUT LS-DYNA count=1\x00',
    '\x00\x00\x00',
    'CHECKOUT \u00ff\u00fe',
    'CHECKOUT LS-DYNA count=\u0663',
    'CHECKOUT LS-DYNA count=1e3',
    'CHECKOUT LS-DYNA count=0x10',
    'CHECKOUT LS-DYNA count= 1',
    'CHECKOUT LS-DYNA count=+1',
    'CHECKOUT LS-DYNA version=2025.1.',
    'CHECKOUT LS-DYNA queue=true',
    `CHECKIN ${h}`,
    'CHECKIN t1.',
    'CHECKIN .',
    '=',
    '==',
    'HELLO =',
    'HELLO user==a host=b',
    '\u{1F600} HELLO',
    'STATUS json json',
    'QUIT now',
    '\x1b[2J',
  ];
  for (const line of lines) {
    const a = await c.request(line);
    t.regex(a, ANSWER, JSON.stringify(line));
    t.false(a.startsWith('GRANTED') || a === 'OK', `${JSON.stringify(line)} -> ${a}`);
  }
  t.false(c.isClosed);
  t.deepEqual(usage(licd), before);
  t.is(await holder.request(`CHECKIN ${h}`), 'OK', 'the real owner still holds its handle');
});

test('random binary garbage never crashes the daemon nor changes seat counts', async (t) => {
  const licd = await startLicd({ features: FEATURES });
  t.teardown(licd.stop);
  const holder = await LineClient.connect(licd.ports.license);
  t.teardown(() => holder.destroy());
  const h = /handle=(\S+)/.exec(await holder.request('CHECKOUT LS-DYNA count=2'))![1]!;
  const tk = await LineClient.connect(licd.ports.tokens);
  t.teardown(() => tk.destroy());
  t.is(await tk.request(`TOKENS ${h} 5`), 'GRANTED tokens=5 feature=MPPDYNA');
  const before = usage(licd);
  const rnd = prng(20251122);
  const ports = [licd.ports.license, licd.ports.tokens];
  // 60 connections, each 1-8 chunks of 1..3000 random bytes (NUL, invalid UTF-8, some newlines), then a random end.
  for (let round = 0; round < 6; round++) {
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        new Promise<void>((resolve) => {
          const s = connect(ports[(round + i) % 2]!, '127.0.0.1');
          s.on('error', () => {});
          s.on('close', () => resolve());
          s.on('data', () => {});
          s.once('connect', () => {
            const chunks = 1 + Math.floor(rnd() * 8);
            for (let k = 0; k < chunks; k++) {
              const b = Buffer.alloc(1 + Math.floor(rnd() * 3000));
              for (let j = 0; j < b.length; j++) b[j] = rnd() < 0.02 ? 0x0a : Math.floor(rnd() * 256);
              s.write(b);
            }
            const how = rnd();
            if (how < 0.33) s.end();
            else if (how < 0.66) s.resetAndDestroy();
            else setTimeout(() => s.destroy(), 20);
          });
        }),
      ),
    );
  }
  await waitFor(() => licd.server.status().connections.license === 1 && licd.server.status().connections.tokens === 1, { what: 'garbage connections gone' });
  t.deepEqual(usage(licd), before);
  t.is(await holder.request('HEARTBEAT'), 'OK', 'the daemon still serves');
  t.is(await tk.request('HEARTBEAT'), 'OK');
  const fresh = await LineClient.connect(licd.ports.license);
  t.teardown(() => fresh.destroy());
  t.regex(await fresh.request('CHECKOUT LS-DYNA count=2'), /^GRANTED/);
});

test('a client that pipelines STATUS without reading its answers does not stall the daemon', async (t) => {
  const licd = await startLicd({ features: FEATURES });
  t.teardown(licd.stop);
  const s = connect(licd.ports.license, '127.0.0.1');
  t.teardown(() => s.destroy());
  await new Promise((r) => s.once('connect', r));
  s.pause(); // never reads the answers
  const burst = Buffer.from('STATUS\n'.repeat(2000));
  for (let i = 0; i < 20 && s.writableLength < 4_000_000; i++) s.write(burst);
  await waitFor(() => s.writableLength > 0 || s.bytesWritten > 0, { what: 'requests sent' });
  t.is(await (await LineClient.connect(licd.ports.license)).request('HEARTBEAT'), 'OK', 'others are served meanwhile');
  s.destroy();
  await waitFor(() => licd.server.status().connections.license <= 1);
});
