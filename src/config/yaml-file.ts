import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError, LpxError, errorMessage, type ConfigIssue } from '../common/errors.ts';
import { Cursor } from './cursor.ts';

/**
 * Parses YAML text and hands its root cursor to `build`. Syntax errors and every issue `build` records are
 * thrown together as one ConfigError, so the operator sees all of them in one run.
 */
export function buildFromYaml<T>(file: string, text: string, build: (root: Cursor) => T): T {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const issues: ConfigIssue[] = [];
  for (const e of [...doc.errors, ...doc.warnings]) {
    const { line, col } = lineCounter.linePos(e.pos[0]);
    issues.push({ file, line, col, path: '', message: `YAML: ${e.message.split('\n')[0]}` });
  }
  if (doc.errors.length) throw new ConfigError(issues);
  const root = new Cursor({ file, doc, lineCounter, issues }, doc.contents, '');
  if (!root.present) {
    issues.push({ file, line: 1, col: 1, path: '', message: 'the file is empty: expected a mapping of sections' });
    throw new ConfigError(issues);
  }
  const value = build(root);
  if (issues.length) throw new ConfigError(issues.sort((a, b) => a.line - b.line || a.col - b.col));
  return deepFreeze(value);
}

export function readConfigText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : errorMessage(err);
    throw new LpxError('LPX_ERR_CONFIG_READ', `${file}: cannot read configuration: ${why}`);
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
