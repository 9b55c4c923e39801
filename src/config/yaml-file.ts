import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError, LpxError, errorMessage, type ConfigIssue } from '../common/errors.ts';
import { Cursor } from './cursor.ts';
import { MAX_CONFIG_BYTES, capIssues, checkDocument, scanNesting } from './yaml-bounds.ts';

/**
 * Parses YAML text and hands its root cursor to `build`. Syntax errors and every issue `build` records are
 * thrown together as one ConfigError, so the operator sees all of them in one run.
 */
export function buildFromYaml<T>(file: string, text: string, build: (root: Cursor) => T): T {
  const lineCounter = new LineCounter();
  if (text.length > MAX_CONFIG_BYTES) throw tooLarge(file, text.length);
  const deep = scanNesting(text);
  if (deep) {
    const before = text.slice(0, deep.offset);
    const line = before.split('\n').length;
    const col = deep.offset - before.lastIndexOf('\n');
    throw new ConfigError([{ file, line, col, path: '', message: deep.message }]);
  }
  // Duplicate keys are found by checkDocument: the package's own check compares every pair of keys.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const issues: ConfigIssue[] = [];
  for (const e of [...doc.errors, ...doc.warnings]) {
    const { line, col } = lineCounter.linePos(e.pos[0]);
    issues.push({ file, line, col, path: '', message: `YAML: ${e.message.split('\n')[0]}` });
  }
  if (doc.errors.length) throw new ConfigError(capIssues(issues));
  const aliases = checkDocument(doc, file, lineCounter, issues);
  if (!aliases) throw new ConfigError(capIssues(issues));
  const root = new Cursor({ file, doc, lineCounter, issues, aliases }, doc.contents, '');
  if (!root.present) {
    issues.push({ file, line: 1, col: 1, path: '', message: 'the file is empty: expected a mapping of sections' });
    throw new ConfigError(issues);
  }
  const value = build(root);
  if (issues.length) throw new ConfigError(capIssues(issues.sort((a, b) => a.line - b.line || a.col - b.col)));
  return deepFreeze(value);
}

function tooLarge(file: string, bytes: number): LpxError {
  return new LpxError('LPX_ERR_CONFIG', `${file}: configuration is ${bytes} bytes, above the limit of ${MAX_CONFIG_BYTES} (1 MiB): not parsed`);
}

/** Reads at most MAX_CONFIG_BYTES (+1, to know it is over): a huge file is refused without reading it whole. */
export function readConfigText(file: string): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const st = fstatSync(fd);
    if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    if (st.size > MAX_CONFIG_BYTES) throw tooLarge(file, st.size);
    const buf = Buffer.allocUnsafe(MAX_CONFIG_BYTES + 1);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, null);
      if (n === 0) break;
      got += n;
    }
    if (got > MAX_CONFIG_BYTES) throw tooLarge(file, got);
    return buf.toString('utf8', 0, got);
  } catch (err) {
    if (err instanceof LpxError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : errorMessage(err);
    throw new LpxError('LPX_ERR_CONFIG_READ', `${file}: cannot read configuration: ${why}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function loadYamlFile<T>(file: string, build: (root: Cursor) => T): T {
  return buildFromYaml(file, readConfigText(file), build);
}

/** Validated configuration is frozen so a reload can never half-change the running one. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}
