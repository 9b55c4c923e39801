import test from 'ava';
import { readFileSync } from 'node:fs';
import { LICD, LICPROXY, REPO, runBin } from '../helpers/cli.ts';

const readme = readFileSync(`${REPO}/README.md`, 'utf8');

/** Options a command's --help lists (--help itself aside), each as its spellings: `-c` and `--config`. */
function options(help: string): string[][] {
  return [...help.matchAll(/^\s+(?:(-\w), )?(--[a-z-]+)/gm)]
    .map((m) => [m[2]!, ...(m[1] ? [m[1]] : [])])
    .filter(([o]) => o !== '--help' && o !== '--version');
}

/** The README names an option in one of its spellings (`-c file`, `--config`). */
function documented(spellings: string[]): boolean {
  return spellings.some((o) => (o.startsWith('--') ? readme.includes(o) : readme.includes(`${o} `)));
}

const commands: Array<[bin: string, args: string[]]> = [
  [LICPROXY, ['run']],
  [LICPROXY, ['check']],
  [LICPROXY, ['demo']],
  [LICPROXY, ['lmstat']],
  [LICPROXY, ['checkout']],
  [LICD, []],
];

test('licproxy --help lists every command the README documents', async (t) => {
  const r = await runBin(LICPROXY, ['--help']);
  t.is(r.code, 0);
  for (const c of ['run', 'check', 'demo', 'lmstat', 'checkout']) {
    t.regex(r.stdout, new RegExp(`^\\s+${c}\\b`, 'm'));
    t.true(readme.includes(`\`licproxy ${c}`), `README lacks licproxy ${c}`);
  }
});

for (const [bin, args] of commands) {
  const name = `${bin.endsWith('licd.js') ? 'licd' : 'licproxy'} ${args.join(' ')}`.trim();
  test(`every option of ${name} --help is in the README`, async (t) => {
    const r = await runBin(bin, [...args, '--help']);
    t.is(r.code, 0, r.stderr);
    const opts = options(r.stdout);
    t.true(opts.length > 0);
    t.deepEqual(opts.filter((o) => !documented(o)), []);
  });
}
