/**
 * A workload drives one started target for one repetition and returns named figures. The harness owns start,
 * stop, repetition and reporting; a workload owns only "what load, and what it measured".
 */
import type { RunningTarget } from '../targets/target.ts';

export type WorkloadName = 'short' | 'ping' | 'idle' | 'bulk' | 'bulk-down' | 'accept';

export interface MetricDef {
  key: string;
  label: string;
  /** Which way is better, for the ratio verdicts. */
  better: 'higher' | 'lower';
  /** Fixed decimals in the table; default: by magnitude. */
  digits?: number;
  /** Listed in the ratios table. */
  ratio?: boolean;
}

export type Figures = Record<string, number | null>;

export interface Measurement {
  figures: Figures;
  /** One-line remarks (load errors, short counts) for the report. */
  notes: string[];
}

export interface BenchSettings {
  /** Measured window per repetition, per workload (ms). */
  durations: Record<'short' | 'ping' | 'bulk' | 'accept', number>;
  /** Warm-up before each measured window (ms): JIT and connection pools warm for every target alike. */
  warmupMs: number;
  shortConcurrency: number;
  pingConnections: number;
  idleConnections: number;
  /** Settle time before and after opening the idle connections, before RSS is read (ms). */
  idleSettleMs: number;
  acceptConcurrency: number;
  bulkMaxBytes: number;
  /** Temp dir of the run (idle holders log there). */
  dir: string;
}

export interface Workload {
  name: WorkloadName;
  title: string;
  /** What it does, for the report. */
  description(s: BenchSettings): string;
  backend: 'licd' | 'sink';
  /** Most client connections held at once (sizes HAProxy maxconn / NGINX worker_connections). */
  maxConnections(s: BenchSettings): number;
  metrics: readonly MetricDef[];
  /** The figure the progress line and the headline use. */
  headline: string;
  run(target: RunningTarget, s: BenchSettings): Promise<Measurement>;
}
