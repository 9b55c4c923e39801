/**
 * The primary's side of affinity by source across workers (see remote-affinity.ts for the worker's side). The
 * bindings are the pools' own tables, the same ones a single process uses, so TTL, `max_bindings`, epochs (server
 * DOWN, MAINT, cleared) and the stats mean the same. What this adds: which worker connection holds which binding
 * (to release them all when a worker dies), and reservations, so that asks for a key being decided wait for the
 * decision instead of balancing twice.
 */
import type { AffinityTable, Binding } from '../affinity/affinity-table.ts';
import { takesBound } from '../affinity/pool-affinity.ts';
import { SourceAffinity } from '../affinity/source-affinity.ts';
import { SharedSourceAffinity } from '../cluster-state/shared-source-affinity.ts';
import type { ProxyRuntime } from '../runtime.ts';
import type { Server } from '../server.ts';

/** A connection of a worker: the worker's cluster id and its connection id. */
interface Asker {
  readonly worker: number;
  readonly id: number;
}

interface Held {
  readonly table: AffinityTable<Server>;
  readonly binding: Binding<Server>;
}

interface Reservation extends Asker {
  readonly waiters: Asker[];
}

export type AffinityReply = (worker: number, id: number, server: string | null) => void;

export class AffinityBroker {
  readonly #runtime: ProxyRuntime;
  readonly #reply: AffinityReply;
  /** worker -> connection id -> the binding that connection counts on. */
  readonly #held = new Map<number, Map<number, Held>>();
  /** `pool\0ip` -> the connection deciding it, and the asks waiting for its decision. */
  readonly #reserved = new Map<string, Reservation>();

  constructor(runtime: ProxyRuntime, reply: AffinityReply) {
    this.#runtime = runtime;
    this.#reply = reply;
  }

  ask(worker: number, id: number, pool: string, ip: string): void {
    const p = this.#runtime.pool(pool);
    const a = p?.affinity;
    // The pool has no table here (a reload changed it): the worker balances without a binding.
    if (p === undefined || !(a instanceof SourceAffinity)) return this.#reply(worker, id, null);
    const key = `${pool}\0${ip}`;
    const r = this.#reserved.get(key);
    if (r !== undefined) {
      r.waiters.push({ worker, id });
      return;
    }
    const table = a.table;
    const b = table.acquire(ip);
    if (b !== undefined) {
      if (takesBound(b.server, p.mode)) {
        this.#heldBy(worker).set(id, { table, binding: b });
        return this.#reply(worker, id, b.server.name);
      }
      table.release(b);
      table.unbind(ip, b);
    }
    const r2: Reservation = { worker, id, waiters: [] };
    this.#reserved.set(key, r2);
    // `cluster:` (SPEC 9): Redis decides the client's server with the other instances; the primary asks it.
    if (a instanceof SharedSourceAffinity) return a.decideFor(ip, (s) => this.#decided(key, r2, table, pool, ip, s));
    this.#reply(worker, id, null);
  }

  /** The cluster's decision for a reserved key: the asker holds it, the waiters ask again (and find it). */
  #decided(key: string, r: Reservation, table: AffinityTable<Server>, pool: string, ip: string, s: Server | null): void {
    if (this.#reserved.get(key) !== r) return; // its worker died meanwhile: workerGone passed the key on
    if (s === null) return this.#reply(r.worker, r.id, null); // the worker balances and tells (aff-bind)
    this.#reserved.delete(key);
    this.#heldBy(r.worker).set(r.id, { table, binding: table.bind(ip, s) });
    this.#reply(r.worker, r.id, s.name);
    for (const w of r.waiters) this.ask(w.worker, w.id, pool, ip);
  }

  /** Connection `id` was balanced to `server` (null: to none). Also a rebind, when its bound server stopped taking it. */
  bind(worker: number, id: number, pool: string, ip: string, server: string | null): void {
    const key = `${pool}\0${ip}`;
    const r = this.#reserved.get(key);
    const mine = r !== undefined && r.worker === worker && r.id === id;
    if (mine) this.#reserved.delete(key);
    this.release(worker, id);
    const a = this.#runtime.pool(pool)?.affinity;
    const s = server === null ? undefined : this.#runtime.server(pool, server);
    if (s !== undefined && a instanceof SourceAffinity) this.#heldBy(worker).set(id, { table: a.table, binding: a.table.bind(ip, s) });
    if (mine) for (const w of r.waiters) this.ask(w.worker, w.id, pool, ip);
  }

  release(worker: number, id: number): void {
    const held = this.#held.get(worker);
    const h = held?.get(id);
    if (h === undefined) return;
    held!.delete(id);
    h.table.release(h.binding);
  }

  /** A worker died: its connections are gone, so is what they held; what it was deciding goes to the next asker. */
  workerGone(worker: number): void {
    const held = this.#held.get(worker);
    if (held !== undefined) for (const id of [...held.keys()]) this.release(worker, id);
    this.#held.delete(worker);
    for (const [key, r] of [...this.#reserved]) {
      const waiters = r.waiters.filter((w) => w.worker !== worker);
      if (r.worker !== worker) {
        r.waiters.length = 0;
        r.waiters.push(...waiters);
        continue;
      }
      this.#reserved.delete(key);
      const sep = key.indexOf('\0');
      for (const w of waiters) this.ask(w.worker, w.id, key.slice(0, sep), key.slice(sep + 1));
    }
  }

  /** Connections counted on bindings, all workers together (tests, stats). */
  get held(): number {
    let n = 0;
    for (const m of this.#held.values()) n += m.size;
    return n;
  }

  #heldBy(worker: number): Map<number, Held> {
    let m = this.#held.get(worker);
    if (m === undefined) this.#held.set(worker, (m = new Map()));
    return m;
  }
}
