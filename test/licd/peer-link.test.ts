/**
 * The peer port (PROTOCOL.md "Peer protocol"): only configured addresses with the shared secret get a link; a
 * malformed or unknown peer message closes the link, is logged, and changes no count.
 */
import test, { type ExecutionContext } from 'ava';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { parseLicdConfig } from '../../src/config/licd-config.ts';
import { LicenseServer } from '../../src/licd/license-server.ts';
import { parsePeerMessage } from '../../src/licd/peer-messages.ts';
import { LineClient } from '../helpers/licd.ts';
import { captureLogger } from '../helpers/proxy.ts';
import { waitFor } from '../helpers/wait.ts';

const SECRET = 'peer-secret-for-the-tests-0123';

async function member(t: ExecutionContext, opts: { secret?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'licd-peer-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'secret'), SECRET + '\n');
  const yaml = stringify({
    server: { name: 'p', host: '127.0.0.1', ports: { license: 0, tokens: 0, peer: 0 } },
    features: [{ name: 'LS-DYNA', count: 3 }],
    redundancy: { mode: 'backup', peers: ['127.0.0.1:9'], order: 0, heartbeat: '1s', ...(opts.secret === false ? {} : { secret_file: 'secret' }) },
  });
  const cap = captureLogger('debug');
  const server = new LicenseServer(parseLicdConfig(yaml, join(dir, 'p.yaml')), { logger: cap.log });
  const ports = await server.start();
  t.teardown(() => server.stop());
  // Alone, the primary serves after 3 heartbeats (its peer address has nobody). The heartbeat is 1 s, not shorter:
  // a serving pair member whose event loop stalls for 2 heartbeats steps down and closes its clients, and a loaded
  // machine stalls for hundreds of milliseconds.
  await waitFor(() => server.status().master, { what: 'the lone primary to serve' });
  return { server, ports, cap };
}

function mac(kind: string, nonce: string, m: { name: string; order: number; mode: string; addr: string; boot: string }, secret = SECRET): string {
  return createHmac('sha256', secret).update(`${kind}|${nonce}|${m.name}|${m.order}|${m.mode}|${m.addr}|${m.boot}`).digest('hex');
}

const ME = { name: 'q', order: 1, mode: 'backup', addr: '127.0.0.1:9', license: 1, tokens: 2, boot: '0123456789abcdef' };

async function handshake(t: ExecutionContext, port: number, secret = SECRET, from?: string, me = ME): Promise<{ c: LineClient; reply: string }> {
  const c = await LineClient.connect(port, from ? { localAddress: from } : {});
  t.teardown(() => c.destroy());
  const ch = JSON.parse(await c.next()) as { t: string; nonce: string };
  t.is(ch.t, 'challenge');
  c.send(JSON.stringify({ t: 'hello', ...me, nonce: 'n'.repeat(32), mac: mac('hello', ch.nonce, me, secret) }));
  const reply = await c.next().catch(() => 'closed');
  return { c, reply };
}

test('a peer with the shared secret gets a welcome; a wrong secret is refused and logged', async (t) => {
  const { ports, cap } = await member(t);
  const ok = await handshake(t, ports.peer!);
  const w = parsePeerMessage(ok.reply);
  t.is(w?.t, 'welcome');
  const { addr, boot } = w as { addr: string; boot: string };
  t.is(w && 'mac' in w ? w.mac : '', mac('welcome', 'n'.repeat(32), { name: 'p', order: 0, mode: 'backup', addr, boot }));
  const bad = await handshake(t, ports.peer!, 'not-the-secret-at-all-000');
  t.is(bad.reply, 'closed');
  await waitFor(() => cap.lines().some((l) => /failed the secret check/.test(String(l.msg))), { what: 'the refusal logged' });
});

/** The member serves this link: a `fetch` on it is answered with a snapshot (messages on other links are dropped). */
async function answersOn(c: LineClient): Promise<boolean> {
  c.send(JSON.stringify({ t: 'fetch' }));
  for (;;) {
    const m = parsePeerMessage(await c.next());
    if (m?.t === 'snap') return true;
  }
}

test('a redial by a process already linked is answered known and closed, the live link stays; another process of the member replaces it', async (t) => {
  const { ports, cap } = await member(t);
  const first = await handshake(t, ports.peer!);
  t.is(parsePeerMessage(first.reply)?.t, 'welcome');
  // The member drops a link silent for 3 heartbeats.
  const hb = JSON.stringify({ t: 'hb', role: 'waiting', term: 0, seq: 0, voted: 0, master: null });
  const keepAlive = setInterval(() => first.c.isClosed || first.c.send(hb), 200);
  t.teardown(() => clearInterval(keepAlive));
  t.true(await answersOn(first.c));

  const again = await handshake(t, ports.peer!);
  const known = parsePeerMessage(again.reply) as { t: string; known?: boolean; mac: string; addr: string; boot: string };
  t.like(known, { t: 'welcome', known: true });
  t.is(known.mac, mac('known', 'n'.repeat(32), { name: 'p', order: 0, mode: 'backup', addr: known.addr, boot: known.boot }), 'the known answer is proved as a welcome is');
  await again.c.closed;
  t.true(await answersOn(first.c), 'the live link still serves');
  t.false(first.c.isClosed);
  t.false(cap.lines().some((l) => l.event === 'peer-down'), 'no link lost');

  // q restarted: a new process, a new boot. Its link is the live one now; the old one was a dead process's.
  const restarted = await handshake(t, ports.peer!, SECRET, undefined, { ...ME, boot: 'fedcba9876543210' });
  const w = parsePeerMessage(restarted.reply) as { t: string; known?: boolean };
  t.is(w.t, 'welcome');
  t.is(w.known, undefined);
  await first.c.closed;
  t.true(await answersOn(restarted.c));
  t.true(cap.lines().some((l) => l.event === 'peer-down' && l.reason === 'replaced by a new link'));
});

test('a connection from an address that is not a configured peer is refused at accept', async (t) => {
  const { ports, cap } = await member(t);
  const c = await LineClient.connect(ports.peer!, { localAddress: '127.0.0.2' });
  t.teardown(() => c.destroy());
  await c.closed;
  t.true(cap.lines().some((l) => l.event === 'peer-refused' && l.address === '127.0.0.2'));
});

test('malformed and unknown peer messages close the link, are logged, and change no count', async (t) => {
  const { server, ports, cap } = await member(t);
  const lic = await LineClient.connect(ports.license);
  t.teardown(() => lic.destroy());
  t.regex(await lic.request('CHECKOUT LS-DYNA'), /^GRANTED /);
  const bad = [
    'not json',
    '{"t":"op","term":1,"seq":1,"op":"grant","r":{"h":"x.1","f":"LS-DYNA","n":-5}}',
    '{"t":"op","term":1,"seq":1,"op":"end"}',
    '{"t":"nonsense"}',
    '[1,2,3]',
    '{"t":"ack","term":"1","seq":1}',
    '{"t":"sess","r":{"h":"x.1","f":"LS-DYNA","n":1,"v":"1","u":"u","host":"h","d":"d","s":1,"tok":{}},"extra":1}',
  ];
  for (const line of bad) {
    const { c, reply } = await handshake(t, ports.peer!);
    t.is(parsePeerMessage(reply)?.t, 'welcome');
    c.send(line);
    await c.closed;
  }
  // A line longer than the peer limit also closes the link.
  const { c: big } = await handshake(t, ports.peer!);
  big.write('x'.repeat(70 * 1024));
  await big.closed;
  // A well-formed op from a member this one does not follow is ignored (and answered stale), never applied.
  const { c: stray } = await handshake(t, ports.peer!);
  stray.send(JSON.stringify({ t: 'op', term: 99, seq: 1, op: 'grant', r: { h: 'x.1', f: 'LS-DYNA', n: 2, v: '1.0', u: 'u', host: 'h', d: 'd', s: 1, tok: {} } }));
  stray.send(JSON.stringify({ t: 'op', term: 99, seq: 2, op: 'end', h: 'p.1' }));
  // They get no answer; a malformed line after them does (the link closes), and a link's lines are handled in order.
  stray.send('not json');
  await stray.closed;
  const st = server.status();
  t.true(st.master, 'still serving');
  t.is(st.features[0]!.inUse, 1, 'no count changed');
  t.true(cap.lines().filter((l) => l.event === 'peer-malformed').length >= 5, 'each malformed line is logged');
  t.regex(await lic.request('CHECKOUT LS-DYNA'), /^GRANTED /, 'and grants as before');
  t.is(server.status().features[0]!.inUse, 2);
});

test('config: a secret is required for peers off loopback; heartbeat is a duration; the peer port is required to start', async (t) => {
  const base = 'server: { name: a, ports: { license: 0, tokens: 0 } }\nfeatures: []\n';
  const err = t.throws(() => parseLicdConfig(base + 'redundancy: { mode: backup, peers: ["10.0.0.2:27200"] }\n', 'a.yaml'));
  t.regex(err!.message, /a\.yaml:3:\d+ redundancy: .*|redundancy\.secret_file: is required when a peer is not on loopback/);
  t.throws(() => parseLicdConfig(base + 'redundancy: { mode: backup, peers: ["127.0.0.1:27200"], heartbeat: 1 }\n', 'a.yaml'), { message: /redundancy\.heartbeat: a duration needs a unit/ });
  t.throws(() => parseLicdConfig(base + 'redundancy: { mode: backup, peers: ["127.0.0.1:27200"], secret_file: nope }\n', '/tmp/a.yaml'), { message: /redundancy\.secret_file: cannot read \/tmp\/nope: ENOENT/ });
  const c = parseLicdConfig(base + 'redundancy: { mode: backup, peers: ["127.0.0.1:27200"], heartbeat: 250ms }\n', 'a.yaml');
  t.like(c.redundancy, { heartbeat: 250, secret: null });
  const server = new LicenseServer(c);
  await t.throwsAsync(server.start(), { code: 'LPX_ERR_CONFIG', message: /server\.ports\.peer is required with redundancy/ });
});
