/**
 * Socket activation (systemd/licproxy.socket): licproxy listens on the sockets passed as LISTEN_FDS/LISTEN_PID
 * (descriptors 3, 4, ...) whose address is a frontend's `listen:`, instead of binding. The socket outlives the
 * process: a client that connects while licproxy is down waits in the backlog and is served by the next process.
 * One process here (`global.workers: 1`); with workers, test/cluster/primary-death.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { adoptInheritedSockets, inheritedDescriptorCount } from '../../src/proxy/inherited-sockets.ts';
import { holdSocket } from '../helpers/held-socket.ts';
import { LineClient, startLicd } from '../helpers/licd.ts';
import { spawnLicproxy } from '../helpers/licproxy-run.ts';
import { settles, waitFor } from '../helpers/wait.ts';

test('a passed socket serves the frontend with its address, across a SIGKILL and a restart; one that matches nothing is named', async (t) => {
  const licd = await startLicd({ name: 'alpha', features: [{ name: 'LS-DYNA', count: 10 }] });
  t.teardown(() => licd.stop());
  const used = holdSocket();
  const unused = holdSocket();
  t.teardown(() => {
    used.close();
    unused.close();
  });
  const dir = mkdtempSync(join(tmpdir(), 'licproxy-activation-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'licproxy.yaml');
  writeFileSync(
    file,
    `pools:
  lic:
    ports: { license: 1 }
    check: { type: tcp, interval: 200ms, rise: 1 }
    servers:
      - { name: alpha, host: 127.0.0.1, ports: { license: ${licd.ports.license} } }
frontends:
  - { name: license, listen: 127.0.0.1:${used.port}, pool: lic, port: license }
`,
  );
  const start = async () => {
    const p = spawnLicproxy(t, file, () => {}, {}, { passFds: [used.fd, unused.fd] });
    await waitFor(
      () => {
        if (p.child.exitCode !== null) throw new Error(`licproxy exited: ${p.stderr()}`);
        return p.lines().some((l) => l.msg === 'licproxy running');
      },
      { timeout: 20_000, what: 'licproxy running' },
    );
    return p;
  };
  const first = await start();
  const msgs = first.lines().map((l) => String(l.msg));
  t.true(msgs.includes(`socket activation: descriptor 3 (127.0.0.1:${used.port}) serves frontend license`), msgs.join('\n'));
  t.true(msgs.includes(`socket activation: descriptor 4 (127.0.0.1:${unused.port}) matches no frontend's listen address: unused`));
  t.is(first.lines().find((l) => l.msg === 'listening')?.listen, `127.0.0.1:${used.port}`);
  const c1 = await LineClient.connect(used.port);
  t.teardown(() => c1.destroy());
  t.regex(await c1.request('CHECKOUT LS-DYNA'), /^GRANTED /);

  first.child.kill('SIGKILL');
  await first.exited;
  // Nobody listens, the socket is open: this client's connect completes and its line waits for the next process.
  const c2 = await LineClient.connect(used.port);
  t.teardown(() => c2.destroy());
  const answer = c2.request('CHECKOUT LS-DYNA', 60_000).catch((e: Error) => e.message);
  // It reaches the new process before the first health check result: it waits for it in the queue.
  await start();
  t.regex(await settles(answer, { timeout: 60_000, what: 'the waiting client served after the restart' }), /^GRANTED /);
});

test('LISTEN_FDS for another process is not taken, and the variables do not reach child processes', (t) => {
  const env: NodeJS.ProcessEnv = { LISTEN_FDS: '2', LISTEN_PID: String(process.pid + 1), LISTEN_FDNAMES: 'a:b', KEEP: '1' };
  t.deepEqual(adoptInheritedSockets(env, process.pid), { sockets: [], problems: [] });
  t.is(inheritedDescriptorCount(), 0);
  t.deepEqual(env, { KEEP: '1' });
  const bad: NodeJS.ProcessEnv = { LISTEN_FDS: 'lots\u001b[2J', LISTEN_PID: String(process.pid) };
  const r = adoptInheritedSockets(bad, process.pid);
  t.is(r.sockets.length, 0);
  t.is(r.problems.length, 1);
  t.false(r.problems[0]!.includes('\u001b'), 'no control bytes echoed');
  t.is(inheritedDescriptorCount(), 0);
});
