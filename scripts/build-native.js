#!/usr/bin/env node
// Builds the native relay (native/relay.c -> native/build/relay.node; see src/proxy/native-relay.ts) with the
// system's C compiler and the headers of the Node running this script. Run by `npm install` (the `install`
// script, also for the published package) and by `npm run build`. Without a compiler or headers it says so in one
// line and exits 0: licproxy then relays every byte in JavaScript, with the same behaviour (more CPU per request
// on long-lived connections). LICPROXY_NATIVE_RELAY=0 skips the build.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'native', 'relay.c');
const outDir = join(root, 'native', 'build');
const out = join(outDir, 'relay.node');
const say = (line) => process.stderr.write(`licproxy native relay: ${line}\n`);

if (process.env.LICPROXY_NATIVE_RELAY === '0') {
  say('skipped (LICPROXY_NATIVE_RELAY=0)');
  process.exit(0);
}
if (process.platform !== 'linux' && process.platform !== 'darwin' && process.platform !== 'freebsd') {
  say(`not built on ${process.platform}: forwarding stays in JavaScript`);
  process.exit(0);
}
// The headers (node_api.h, uv.h) ship with Node in <prefix>/include/node.
const candidates = [
  process.env.LICPROXY_NODE_HEADERS,
  join(dirname(process.execPath), '..', 'include', 'node'),
  '/usr/include/node',
  '/usr/local/include/node',
].filter(Boolean);
const include = candidates.find((d) => existsSync(join(d, 'node_api.h')) && existsSync(join(d, 'uv.h')));
if (include === undefined) {
  say(`not built: no Node headers (node_api.h, uv.h) in ${candidates.join(', ')}; forwarding stays in JavaScript`);
  process.exit(0);
}
const cc = process.env.CC || 'cc';
mkdirSync(outDir, { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
const flags = ['-O2', '-fPIC', '-shared', '-std=gnu11', '-Wall', '-Wextra', '-Werror', `-I${include}`, src, '-o', tmp];
if (process.platform === 'darwin') flags.splice(3, 0, '-undefined', 'dynamic_lookup');
try {
  execFileSync(cc, flags, { stdio: ['ignore', 'ignore', 'pipe'] });
  renameSync(tmp, out); // atomic: a running licproxy that loaded the old file keeps it
} catch (err) {
  rmSync(tmp, { force: true });
  const detail = err && typeof err === 'object' && 'stderr' in err && err.stderr ? String(err.stderr).trim().split('\n')[0] : String(err.message ?? err);
  say(`not built (${cc}: ${detail}); forwarding stays in JavaScript`);
  process.exit(0);
}
