/** Validation of the admin API's request bodies; every failure is one line for a 400 answer. */
import type { AdminState } from './snapshot.ts';

export interface ServerChange {
  state?: AdminState;
  weight?: number;
  /** `"clear"`: drop the server's affinity bindings (HAProxy's `clear table` for one server). */
  bindings?: 'clear';
}

const STATES: readonly AdminState[] = ['ready', 'drain', 'maint'];

export function parseServerChange(body: Buffer): { ok: true; change: ServerChange } | { ok: false; message: string } {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return { ok: false, message: 'body is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, message: 'body must be a JSON object like {"state":"drain"} or {"weight":50}' };
  }
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (key !== 'state' && key !== 'weight' && key !== 'bindings') {
      return { ok: false, message: `unknown key ${JSON.stringify(key).slice(0, 80)} (expected state, weight, bindings)` };
    }
  }
  const change: ServerChange = {};
  if ('state' in obj) {
    if (typeof obj.state !== 'string' || !STATES.includes(obj.state as AdminState)) {
      return { ok: false, message: `state: expected one of ready, drain, maint, got ${show(obj.state)}` };
    }
    change.state = obj.state as AdminState;
  }
  if ('weight' in obj) {
    const w = obj.weight;
    if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > 256) {
      return { ok: false, message: `weight: expected an integer 0..256, got ${show(w)}` };
    }
    change.weight = w;
  }
  if ('bindings' in obj) {
    if (obj.bindings !== 'clear') return { ok: false, message: `bindings: expected "clear", got ${show(obj.bindings)}` };
    change.bindings = 'clear';
  }
  if (change.state === undefined && change.weight === undefined && change.bindings === undefined) {
    return { ok: false, message: 'body must set state, weight and/or bindings' };
  }
  return { ok: true, change };
}

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}
