/**
 * What reading a configuration file costs, for legitimate sizes and for the hostile shapes the bounds refuse or
 * cap (issue 14 point 4): time and the heap growth of one parse in this thread, with the outcome's first line.
 *
 *   node --import tsx bench/config-bounds.ts
 *
 * Figures depend on the machine; compare rows within one run (e.g. the 1,000-server file against the limit-size
 * files). Every case is bounded by the size limit, so the whole run takes well under a minute.
 */
import { parseProxyConfig } from '../src/config/proxy-schema.ts';
import { MAX_CONFIG_BYTES } from '../src/config/yaml-bounds.ts';

const UNDER = MAX_CONFIG_BYTES - 4096;

function servers(n: number): string {
  const lines = Array.from({ length: n }, (_, i) => `      - { name: s${i}, address: 10.0.${(i >> 8) & 255}.${i & 255}:31010, weight: 10 }`);
  return `pools:\n  big:\n    check: { type: tcp, interval: 1s }\n    servers:\n${lines.join('\n')}\nfrontends:\n  - { name: big, listen: 127.0.0.1:31010, pool: big }\n`;
}

const CASES: Array<[string, () => string]> = [
  ['1,000 servers', () => servers(1_000)],
  ['10,000 servers', () => servers(10_000)],
  ['over the limit (by 1 byte)', () => ' '.repeat(MAX_CONFIG_BYTES + 1)],
  ['duplicate keys, at the limit', () => `global:\n${'  a: 1\n'.repeat(Math.floor(UNDER / 7))}`],
  ['distinct unknown keys, at the limit', () => { let s = 'global:\n'; for (let i = 0; s.length < UNDER - 20; i++) s += `  k${i}: 1\n`; return s; }],
  ['flow nesting, at the limit', () => `global: ${'['.repeat(UNDER / 2 - 8)}${']'.repeat(UNDER / 2 - 8)}\n`],
  ['block nesting, at the limit', () => { let s = 'global:\n'; for (let d = 1; s.length < UNDER - 2000; d++) s += `${' '.repeat(d)}k${d}:\n`; return s; }],
  ['billion laughs (9 levels, 0.5 KB)', () => { let s = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n'; for (let i = 1; i < 9; i++) s += `a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]\n`; return s + 'global: *a8\n'; }],
  ['pools x servers by alias (2,000 x 2,000, 98 KB)', () => {
    const srv = `srvs: &S [${Array.from({ length: 2000 }, (_, i) => `{name: s${i}, address: "10.0.0.1:1"}`).join(', ')}]`;
    return `x:\n  ${srv}\n  p: &P { servers: *S }\npools:\n${Array.from({ length: 2000 }, (_, i) => `  p${i}: *P\n`).join('')}frontends: []\n`;
  }],
];

const rows: string[] = ['| case | bytes | ms | heap growth MB | outcome |', '|---|---:|---:|---:|---|'];
for (const [name, make] of CASES) {
  const text = make();
  globalThis.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  let outcome = 'valid';
  try {
    parseProxyConfig('bench.yaml', text);
  } catch (err) {
    outcome = String((err as Error).message).split('\n')[0]!.replace(/\|/g, '/').slice(0, 90);
  }
  const ms = Math.round(performance.now() - t0);
  const mb = Math.round((process.memoryUsage().heapUsed - heap0) / 1e6);
  rows.push(`| ${name} | ${text.length} | ${ms} | ${mb} | ${outcome} |`);
}
process.stdout.write(`${rows.join('\n')}\n`);
