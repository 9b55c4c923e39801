/**
 * `licproxy check` on hostile files: never a stack trace, never raw control bytes on the terminal, a bounded cost.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { printable } from '../../src/common/printable.ts';
import { MAX_CONFIG_BYTES } from '../../src/config/yaml-bounds.ts';
import { LICPROXY, runBin } from '../helpers/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'licproxy-check-hostile-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** Anything a terminal would act on, or that reorders text: C0 but \n, DEL, C1, bidi controls. */
// eslint-disable-next-line no-control-regex
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

const ESC = '\x1b';
const OSC_TITLE = `${ESC}]0;pwned\x07`;
const CSI_CLEAR = `${ESC}[2J${ESC}[31m`;
const C1_CSI = '\u009b31m';
const RLO = '\u202e';

test('printable escapes ESC, OSC, C1, bidi controls and line breaks; leaves other text as it is', (t) => {
  t.is(printable(`a${ESC}[31mb`), 'a\\x1b[31mb');
  t.is(printable(OSC_TITLE), '\\x1b]0;pwned\\x07');
  t.is(printable(`x${C1_CSI}`), 'x\\x9b31m');
  t.is(printable(`evil${RLO}txt.exe\u2066\u2069`), 'evil\\u202etxt.exe\\u2066\\u2069');
  t.is(printable('two\nlines\r\t'), 'two\\x0alines\\x0d\\x09');
  t.is(printable('Grüße, 日本, "quoted" \\n {x}'), 'Grüße, 日本, "quoted" \\n {x}');
});

test('check echoes no control bytes from keys, values or paths: they are escaped', async (t) => {
  const file = join(dir, 'esc.yaml');
  writeFileSync(
    file,
    [
      'global:',
      `  "grace${CSI_CLEAR}": 1s`,
      `  log_level: "loud${OSC_TITLE}"`,
      'pools:',
      `  "p${RLO}ool":`,
      `    servers: [{ name: "a${C1_CSI}", address: "127.0.0.1:1" }]`,
      'frontends:',
      `  - { name: f, listen: "127.0.0.1:31010", pool: "q${ESC}[1m" }`,
      '',
    ].join('\n'),
  );
  const r = await runBin(LICPROXY, ['check', '-c', file]);
  t.is(r.code, 1);
  t.notRegex(r.stderr, RAW, JSON.stringify(r.stderr));
  t.notRegex(r.stderr, /\n\s+at /, 'no stack trace');
  t.true(r.stderr.includes('unknown key "grace\\x1b[2J\\x1b[31m"'), r.stderr);
  t.true(r.stderr.includes('"loud\\x1b]0;pwned\\x07"'), r.stderr);
  t.true(r.stderr.includes('pool name "p\\u202eool" is not valid'), r.stderr);
  t.true(r.stderr.includes('"a\\x9b31m" is not valid'), r.stderr);
  t.true(r.stderr.includes('unknown pool "q\\x1b[1m"'), r.stderr);
  for (const line of r.stderr.trimEnd().split('\n')) t.regex(line, /^\S+esc\.yaml(:\d+:\d+ |: \d+ errors)/);
});

test('check on a file far above the size limit: one line, exit 1, without reading it', async (t) => {
  const file = join(dir, 'huge.yaml');
  writeFileSync(file, Buffer.alloc(50 * 1024 * 1024, 0x61));
  const r = await runBin(LICPROXY, ['check', '-c', file]);
  t.is(r.code, 1);
  t.is(r.stdout, '');
  t.is(r.stderr, `licproxy: ${file}: configuration is ${50 * 1024 * 1024} bytes, above the limit of ${MAX_CONFIG_BYTES} (1 MiB): not parsed\n`);
});

test('check on a billion-laughs file and on deep nesting: one error line each, exit 1, no stack', async (t) => {
  let laughs = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
  for (let i = 1; i < 9; i++) laughs += `a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]\n`;
  const cases = {
    'laughs.yaml': [laughs + 'global: *a8\n', /laughs\.yaml:1:1 aliases \(\*name\) reach more than \d+ values: not read$/],
    'deep.yaml': [`pools: ${'['.repeat(100_000)}\n`, /deep\.yaml:1:72 more than 64 nested \[ \] or \{ \}: not parsed$/],
  } as const;
  for (const [name, [text, expected]] of Object.entries(cases)) {
    const file = join(dir, name);
    writeFileSync(file, text);
    const r = await runBin(LICPROXY, ['check', '-c', file]);
    t.is(r.code, 1, name);
    const lines = r.stderr.trimEnd().split('\n');
    t.is(lines.length, 2, r.stderr);
    t.regex(lines[0]!, expected);
    t.regex(lines[1]!, /1 error, configuration is not valid$/);
  }
});
