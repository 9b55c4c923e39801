#!/usr/bin/env node
// `licproxy` from the TypeScript sources through tsx, for tests: a change to src/ needs no build to be tested.
// bin/licproxy.js runs the compiled dist/ (test/release/ covers it).
import { register } from 'tsx/esm/api';

register();
await import('../../../src/cli/licproxy.ts');
