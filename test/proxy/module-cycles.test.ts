/**
 * The pool, its affinity variants and the worker's remote affinity share their types through src/proxy/contracts.ts:
 * none of them may import another in a cycle (not even for types), so each can be read and changed on its own.
 */
import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { REPO } from '../helpers/cli.ts';

const SRC = join(REPO, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports and re-exports of every source file, types included. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    const deps = [...text.matchAll(/^(?:import|export)[^'"]*?from '(\.[^']+)'/gm)].map((m) => normalize(join(dirname(file), m[1]!)));
    graph.set(file, deps);
  }
  return graph;
}

/** Strongly connected components of more than one file (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const comp: string[] = [];
    for (;;) {
      const w = stack.pop()!;
      onStack.delete(w);
      comp.push(w);
      if (w === v) break;
    }
    if (comp.length > 1) out.push(comp.map((f) => relative(REPO, f)).sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

test('no import cycle through pool.ts, affinity/* or cluster/remote-affinity.ts', (t) => {
  const watched = /^src\/proxy\/(pool\.ts|affinity\/|cluster\/remote-affinity\.ts|contracts\.ts)/;
  const bad = cycles(importGraph()).filter((c) => c.some((f) => watched.test(f)));
  t.deepEqual(bad, []);
});
