import { isAlias, isMap, isPair, isScalar, isSeq, type Alias, type Document, type LineCounter, type Node } from 'yaml';
import type { ConfigIssue } from '../common/errors.ts';
import { parseDuration } from '../common/duration.ts';
import { parseHostPort, type HostPort } from '../common/address.ts';
import { parseCidr } from '../common/allow-list.ts';
import { nearest } from './nearest.ts';

/** What every cursor of one file shares: where positions come from and where issues go. */
export interface CursorContext {
  file: string;
  doc: Document;
  lineCounter: LineCounter;
  issues: ConfigIssue[];
  /** Each alias's target, found once for the file (Alias.resolve searches the document on every call). */
  aliases?: ReadonlyMap<Alias, Node>;
}

/**
 * A position in a parsed YAML document: the node (possibly absent), its YAML path, and the nearest present node
 * for error positions. Readers return a typed value or, after recording an issue, the default; they never throw,
 * so one pass reports every error in the file.
 */
export class Cursor {
  readonly #ctx: CursorContext;
  readonly node: Node | undefined;
  readonly path: string;
  /** The node whose position an error names when this one is absent (the parent map, or the key). */
  readonly #anchor: Node | undefined;

  constructor(ctx: CursorContext, node: unknown, path: string, anchor?: Node) {
    this.#ctx = ctx;
    let n = node as Node | undefined;
    if (n && isAlias(n)) n = ctx.aliases ? ctx.aliases.get(n) : (n.resolve(ctx.doc) as Node | undefined);
    this.node = n ?? undefined;
    this.path = path;
    this.#anchor = anchor;
  }

  get file(): string {
    return this.#ctx.file;
  }

  get present(): boolean {
    return this.node !== undefined && !(isScalar(this.node) && this.node.value === null);
  }

  /** 1-based line and column of this node, or of the nearest present ancestor. */
  pos(): { line: number; col: number } {
    const n = this.node ?? this.#anchor;
    const offset = n?.range?.[0] ?? 0;
    return this.#ctx.lineCounter.linePos(offset);
  }

  error(message: string): void {
    const { line, col } = this.pos();
    this.#ctx.issues.push({ file: this.#ctx.file, line, col, path: this.path, message });
  }

  get issueCount(): number {
    return this.#ctx.issues.length;
  }

  #child(key: string | number, node: unknown, keyNode?: Node): Cursor {
    const path = typeof key === 'number' ? `${this.path}[${key}]` : this.path ? `${this.path}.${key}` : key;
    return new Cursor(this.#ctx, node, path, keyNode ?? this.node ?? this.#anchor);
  }

  /** The child at `key` of a map (absent when this is not a map or has no such key). */
  at(key: string): Cursor {
    if (this.node && isMap(this.node)) {
      for (const pair of this.node.items) {
        if (isPair(pair) && isScalar(pair.key) && String(pair.key.value) === key) {
          return this.#child(key, pair.value, pair.key as Node);
        }
      }
    }
    return this.#child(key, undefined);
  }

  /** Checks this is a map (when present) and reports keys outside `known`, suggesting the nearest known key. */
  map(known?: readonly string[]): boolean {
    if (!this.present) return false;
    if (!isMap(this.node)) {
      this.error(`expected a mapping (key: value lines), got ${describe(this.node)}`);
      return false;
    }
    if (known) {
      for (const pair of this.node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : '';
        if (!known.includes(key)) {
          const near = nearest(key, known);
          const c = this.#child(key, pair.key);
          c.error(`unknown key "${key}"${near ? `; did you mean "${near}"?` : `; known keys: ${known.join(', ')}`}`);
        }
      }
    }
    return true;
  }

  /** Entries of a map whose keys are free names (pools, named ports), in file order. */
  entries(): Array<[string, Cursor]> {
    if (!this.present) return [];
    if (!isMap(this.node)) {
      this.error(`expected a mapping (name: value lines), got ${describe(this.node)}`);
      return [];
    }
    return this.node.items.map((pair) => {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      return [key, this.#child(key, pair.value, pair.key as Node)];
    });
  }

  /** Items of a sequence; a lone scalar or map is not silently wrapped. */
  items(): Cursor[] {
    if (!this.present) return [];
    if (!isSeq(this.node)) {
      this.error(`expected a list (- item lines or [a, b]), got ${describe(this.node)}`);
      return [];
    }
    return this.node.items.map((n, i) => this.#child(i, n));
  }

  #scalar(): unknown {
    return this.node && isScalar(this.node) ? this.node.value : undefined;
  }

  /** Absent, or written with no value (`grace:`): the latter is a slip more often than a wish for the default. */
  #missing(required: boolean): void {
    if (this.node !== undefined) this.error(required ? 'has no value' : 'has no value (remove the key to use the default)');
    else if (required) this.error('is required');
  }

  str(opts: { required?: boolean; pattern?: RegExp; hint?: string } = {}): string | undefined {
    if (!this.present) return this.#missing(!!opts.required), undefined;
    const v = this.#scalar();
    if (typeof v !== 'string' || v === '') {
      this.error(`expected a non-empty string, got ${describe(this.node)}`);
      return undefined;
    }
    if (opts.pattern && !opts.pattern.test(v)) {
      this.error(`"${v}" is not valid: ${opts.hint ?? `expected ${opts.pattern}`}`);
      return undefined;
    }
    return v;
  }

  int(min: number, max: number, opts: { required?: boolean } = {}): number | undefined {
    if (!this.present) return this.#missing(!!opts.required), undefined;
    const v = this.#scalar();
    const range = max === Infinity ? `>= ${min}` : `${min}..${max}`;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.error(`must be a whole number ${range}, got ${describe(this.node)}`);
      return undefined;
    }
    return v;
  }

  bool(): boolean | undefined {
    if (!this.present) return this.#missing(false), undefined;
    const v = this.#scalar();
    if (typeof v !== 'boolean') {
      this.error(`must be true or false, got ${describe(this.node)}`);
      return undefined;
    }
    return v;
  }

  oneOf<T extends string>(values: readonly T[]): T | undefined {
    if (!this.present) return this.#missing(false), undefined;
    const v = this.#scalar();
    if (typeof v !== 'string' || !values.includes(v as T)) {
      const near = typeof v === 'string' ? nearest(v, values) : undefined;
      this.error(`must be one of ${values.join(' | ')}, got ${describe(this.node)}${near ? `; did you mean "${near}"?` : ''}`);
      return undefined;
    }
    return v as T;
  }

  /** A duration string with a unit, in milliseconds. */
  duration(opts: { min?: number } = {}): number | undefined {
    if (!this.present) return this.#missing(false), undefined;
    const v = this.#scalar();
    if (typeof v === 'number') {
      this.error(`a duration needs a unit: write "${v}s" or "${v}ms" (units: ms, s, m, h, d)`);
      return undefined;
    }
    const ms = typeof v === 'string' ? parseDuration(v) : undefined;
    if (ms === undefined) {
      this.error(`expected a duration such as 500ms, 30s, 5m, 1h, got ${describe(this.node)}`);
      return undefined;
    }
    if (opts.min !== undefined && ms < opts.min) {
      this.error(`must be at least ${opts.min}ms, got ${v}`);
      return undefined;
    }
    return ms;
  }

  hostPort(opts: { required?: boolean; allowZero?: boolean } = {}): HostPort | undefined {
    if (!this.present) return this.#missing(!!opts.required), undefined;
    const v = this.#scalar();
    if (typeof v !== 'string') {
      this.error(`expected host:port as a string, got ${describe(this.node)}`);
      return undefined;
    }
    const r = parseHostPort(v, opts.allowZero);
    if (typeof r === 'string') return this.error(r), undefined;
    return r;
  }

  strList(): string[] | undefined {
    if (!this.present) return this.#missing(false), undefined;
    const out: string[] = [];
    for (const item of this.items()) {
      const s = item.str({ required: true });
      if (s !== undefined) out.push(s);
    }
    return out;
  }

  cidrList(): string[] | undefined {
    if (!this.present) return this.#missing(false), undefined;
    const out: string[] = [];
    for (const item of this.items()) {
      const s = item.str({ required: true });
      if (s === undefined) continue;
      const p = parseCidr(s);
      if (typeof p === 'string') item.error(p);
      else out.push(s);
    }
    return out;
  }
}

function describe(node: Node | undefined): string {
  if (node === undefined) return 'nothing';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return 'nothing';
    return typeof v === 'string' ? `"${v}"` : String(v);
  }
  return 'an unsupported YAML node';
}
