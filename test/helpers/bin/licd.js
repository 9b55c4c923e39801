#!/usr/bin/env node
// `licd` from the TypeScript sources through tsx, for tests: a change to src/ needs no build to be tested.
// bin/licd.js runs the compiled dist/ (test/release/ covers it).
import { register } from 'tsx/esm/api';

register();
await import('../../../src/cli/licd.ts');
