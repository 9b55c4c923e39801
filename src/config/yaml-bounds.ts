/**
 * Bounds on what a configuration file may cost to read, so a hostile or broken file is refused with one line
 * instead of taking the process's memory or minutes of CPU (the yaml package's own checks are not enough: its
 * duplicate-key check is quadratic in a map's size, its composer recurses once per nesting level, and aliases are
 * expanded wherever the schema reads them).
 *
 * A 1,000-server file is about 60 KB; a file at MAX_CONFIG_BYTES (about 16,000 servers) parses in about 2 s.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, type Alias, type Document, type LineCounter, type Node } from 'yaml';
import type { ConfigIssue } from '../common/errors.ts';

export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Open `[` / `{` at one time: a configuration needs a handful. */
export const MAX_FLOW_DEPTH = 64;
/** Columns of indentation (spaces, and `- ` / `? ` indicators that open a nested block on the same line). */
export const MAX_INDENT = 256;
/** Values reached through aliases, counted as often as they are reached. */
export const MAX_ALIASED_NODES = 100_000;
/** Issues reported for one file; the rest are counted. */
export const MAX_ISSUES = 100;

/** A whole-file problem found before or beside the YAML parser. */
export interface BoundsProblem {
  offset: number;
  message: string;
}

/**
 * One linear pass over the text for what would make the parser recurse too deep: flow brackets (outside quoted
 * strings and comments) and indentation. Returns the first problem, or null.
 */
export function scanNesting(text: string): BoundsProblem | null {
  let depth = 0;
  let lineStart = true;
  let indent = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x0a) {
      lineStart = true;
      indent = 0;
      continue;
    }
    if (lineStart) {
      // Leading spaces and block indicators followed by a space count as indentation.
      if (ch === 0x20 || ((ch === 0x2d || ch === 0x3f) && text.charCodeAt(i + 1) === 0x20)) {
        if (++indent > MAX_INDENT) return { offset: i, message: `indentation deeper than ${MAX_INDENT} columns: not parsed` };
        continue;
      }
      lineStart = false;
    }
    if (ch === 0x23 && (i === 0 || text.charCodeAt(i - 1) === 0x20 || text.charCodeAt(i - 1) === 0x09 || text.charCodeAt(i - 1) === 0x0a)) {
      while (i + 1 < text.length && text.charCodeAt(i + 1) !== 0x0a) i++;
    } else if (ch === 0x22) {
      // "double quoted", backslash escapes
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (ch === 0x27 && (i === 0 || /[\s[{,:]/.test(text[i - 1]!))) {
      // 'single quoted' ('' is a quote inside); an apostrophe inside a plain word is not a quote
      for (i++; i < text.length; i++) {
        if (text.charCodeAt(i) === 0x27) {
          if (text.charCodeAt(i + 1) === 0x27) i++;
          else break;
        }
      }
    } else if (ch === 0x5b || ch === 0x7b) {
      if (++depth > MAX_FLOW_DEPTH) return { offset: i, message: `more than ${MAX_FLOW_DEPTH} nested [ ] or { }: not parsed` };
    } else if ((ch === 0x5d || ch === 0x7d) && depth > 0) {
      depth--;
    }
  }
  return null;
}

/**
 * One pass over the parsed document: duplicate keys in each map (a set per map, where the yaml package compares
 * every pair), and the number of values aliases reach (a billion-laughs file is small but expands without end).
 * Returns each alias's target for the Cursor, or null after recording issues.
 */
export function checkDocument(doc: Document, file: string, lineCounter: LineCounter, issues: ConfigIssue[]): Map<Alias, Node> | null {
  const at = (node: Node | null | undefined): { line: number; col: number } => lineCounter.linePos(node?.range?.[0] ?? 0);
  /** Size of each node counting what its aliases reach, memoised: a node reached twice costs one walk. */
  const sizes = new Map<Node, number>();
  // Anchors as met in document order (an alias names the nearest anchor before it); the package's own
  // Alias.resolve searches the whole document for each alias.
  const anchors = new Map<string, Node>();
  const targets = new Map<Alias, Node>();
  let aliased = 0;
  let ok = true;
  const size = (node: unknown): number => {
    if (!node || typeof node !== 'object') return 1;
    const n = node as Node;
    const known = sizes.get(n);
    if (known !== undefined) return known;
    let total = 1;
    if (!isAlias(n) && (n as { anchor?: string }).anchor) anchors.set((n as { anchor: string }).anchor, n);
    if (isAlias(n)) {
      const target = anchors.get(n.source);
      if (target) targets.set(n, target);
      // An alias to its own enclosing node (a cycle) is sized 1 while its target is being walked.
      sizes.set(n, 1);
      const reached = target ? size(target) : 1;
      aliased += reached;
      total = reached;
    } else if (isMap(n)) {
      sizes.set(n, 1);
      const seen = new Set<string>();
      for (const pair of n.items) {
        if (!isPair(pair)) continue;
        if (isScalar(pair.key)) {
          const key = String(pair.key.value);
          if (seen.has(key)) {
            const { line, col } = at(pair.key as Node);
            issues.push({ file, line, col, path: '', message: 'YAML: Map keys must be unique' });
            ok = false;
          }
          seen.add(key);
        }
        total += size(pair.key) + size(pair.value);
      }
    } else if (isSeq(n)) {
      sizes.set(n, 1);
      for (const item of n.items) total += size(item);
    }
    sizes.set(n, total);
    return total;
  };
  size(doc.contents);
  if (aliased > MAX_ALIASED_NODES) {
    issues.push({ file, line: 1, col: 1, path: '', message: `aliases (*name) reach more than ${MAX_ALIASED_NODES} values: not read` });
    return null;
  }
  return ok ? targets : null;
}

/** The first MAX_ISSUES issues, and one more line counting the rest. */
export function capIssues(issues: ConfigIssue[]): ConfigIssue[] {
  if (issues.length <= MAX_ISSUES) return issues;
  const last = issues[MAX_ISSUES - 1]!;
  return [
    ...issues.slice(0, MAX_ISSUES),
    { file: last.file, line: last.line, col: last.col, path: '', message: `and ${issues.length - MAX_ISSUES} more errors not shown` },
  ];
}
