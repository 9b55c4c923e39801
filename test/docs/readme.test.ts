import test from 'ava';
import { readFileSync } from 'node:fs';
import { KEYS, parseProxyConfig } from '../../src/config/proxy-schema.ts';
import { REPO } from '../helpers/cli.ts';

const readme = readFileSync(`${REPO}/README.md`, 'utf8');

/** Every key path the schema accepts, spelled as the README's reference table spells it. */
function schemaKeys(): string[] {
  const keys: string[] = [];
  for (const k of KEYS.global) keys.push(`global.${k}`);
  for (const k of KEYS.stats) if (k !== 'admin' && k !== 'history' && k !== 'events') keys.push(`stats.${k}`);
  for (const k of KEYS.admin) keys.push(`stats.admin.${k}`);
  for (const k of KEYS.history) keys.push(`stats.history.${k}`);
  for (const k of KEYS.events) keys.push(`stats.events.${k}`);
  for (const k of KEYS.alert) keys.push(`alerts[].${k}`);
  const nested = {
    timeouts: KEYS.timeouts,
    check: KEYS.check,
    affinity: KEYS.affinity,
    failback: KEYS.failback,
    overflow: KEYS.overflow,
    failover: KEYS.failover,
  } as const;
  for (const k of KEYS.poolSettings) {
    if (k in nested) for (const n of nested[k as keyof typeof nested]) keys.push(`defaults.${k}.${n}`);
    else keys.push(`defaults.${k}`);
  }
  keys.push('pools.<name>.ports', 'pools.<name>.feature');
  for (const k of KEYS.server) keys.push(`pools.<name>.servers[].${k}`);
  for (const k of KEYS.frontend) keys.push(`frontends[].${k}`);
  keys.push('daemons[]');
  return keys;
}

function tableKeys(): string[] {
  return [...readme.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!).filter((k) => /^(global|stats|defaults|pools|frontends|daemons|alerts)/.test(k));
}

test('the README reference table names every schema key', (t) => {
  const documented = new Set(tableKeys());
  const missing = schemaKeys().filter((k) => !documented.has(k));
  t.deepEqual(missing, []);
});

test('the README reference table names no key the schema lacks', (t) => {
  const known = new Set(schemaKeys());
  t.deepEqual(tableKeys().filter((k) => !known.has(k)), []);
});

test('every complete licproxy YAML snippet in the README passes validation', (t) => {
  const snippets = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((s) => /^pools:/m.test(s) && /^frontends:/m.test(s));
  t.true(snippets.length >= 1);
  for (const s of snippets) t.notThrows(() => parseProxyConfig('README.md', s));
});
