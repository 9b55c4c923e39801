/**
 * A latency histogram in one preallocated Uint32Array (log-linear buckets, HDR style, < 1% error): recording is
 * two integer operations and no allocation, so the load generator measures the server, not its own garbage.
 * Values are whole microseconds, 0 .. 2^31-1 (about 35 minutes); larger values are clamped.
 */
const SUB_BITS = 7;
const SUB = 1 << SUB_BITS; // 128 sub-buckets per power of two
const LINEAR = SUB * 2; // values below 256us are exact
const BUCKETS = (31 - SUB_BITS + 1) * SUB + SUB;
const MAX = 0x7fffffff;

export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export class Histogram {
  readonly #counts = new Uint32Array(BUCKETS);
  #count = 0;
  #sum = 0;
  #min = MAX;
  #max = 0;

  record(us: number): void {
    const v = us <= 0 ? 0 : us >= MAX ? MAX : us | 0;
    this.#counts[bucketOf(v)]!++;
    this.#count++;
    this.#sum += v;
    if (v < this.#min) this.#min = v;
    if (v > this.#max) this.#max = v;
  }

  get count(): number {
    return this.#count;
  }

  /** The value at quantile q (0..1), as the middle of its bucket, clamped to the observed min and max. */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.min(this.#max, Math.max(this.#min, valueOf(i)));
    }
    return this.#max;
  }

  merge(other: Histogram): void {
    const c = other.#counts;
    for (let i = 0; i < BUCKETS; i++) this.#counts[i]! += c[i]!;
    this.#count += other.#count;
    this.#sum += other.#sum;
    if (other.#count) {
      this.#min = Math.min(this.#min, other.#min);
      this.#max = Math.max(this.#max, other.#max);
    }
  }

  summary(): LatencySummary {
    return {
      count: this.#count,
      min: this.#count ? this.#min : 0,
      mean: this.#count ? Math.round(this.#sum / this.#count) : 0,
      p50: this.quantile(0.5),
      p90: this.quantile(0.9),
      p99: this.quantile(0.99),
      p999: this.quantile(0.999),
      max: this.#max,
    };
  }
}

function bucketOf(v: number): number {
  if (v < LINEAR) return v;
  const exp = 31 - Math.clz32(v); // floor(log2 v), >= 8 here
  const shift = exp - SUB_BITS;
  return (shift + 1) * SUB + ((v >>> shift) - SUB);
}

function valueOf(i: number): number {
  if (i < LINEAR) return i;
  const shift = Math.floor(i / SUB) - 1;
  const sub = (i % SUB) + SUB;
  return sub * 2 ** shift + 2 ** (shift - 1);
}
