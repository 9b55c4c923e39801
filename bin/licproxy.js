#!/usr/bin/env node
// The `licproxy` command: the compiled JavaScript in dist/ (built by `npm run build`, which `npm install` in a git
// checkout runs as `prepare`; the published tarball ships it built).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/licproxy.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('licproxy: dist/cli/licproxy.js is missing: run npm run build');
  process.exit(1);
}
await import(entry.href);
