/** Medians and ranges over repetitions: the figures the report prints. */

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(values: readonly (number | null | undefined)[]): Spread | null {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median, min: v[0]!, max: v[v.length - 1]!, n: v.length };
}

/** Thousands separators for big figures, a few significant digits for small ones. */
export function fmt(x: number, digits?: number): string {
  if (!Number.isFinite(x)) return '-';
  const a = Math.abs(x);
  const d = digits ?? (a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3);
  return x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

/** The median of the finite values (NaN when there is none). */
export function median(xs: readonly number[]): number {
  return spread(xs)?.median ?? NaN;
}

/** Per-round ratios against a baseline of the same run, as the reports print them: the median, then each round. */
export function ratioSummary(ratios: readonly number[]): string {
  return `**${median(ratios).toFixed(2)}x** (rounds: ${ratios.map((r) => r.toFixed(2)).join(', ')})`;
}
