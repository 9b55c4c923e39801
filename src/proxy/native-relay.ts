/**
 * The native relay (native/relay.c, built by `npm install` / `npm run build` into native/build/relay.node): an
 * established plain connection whose two sides are raw sockets can hand its two descriptors to C, which forwards
 * the bytes on Node's own loop with no JavaScript per read. connection.ts promotes a connection once it has shown
 * it is more than a single exchange (PROMOTE_AFTER_READS reads), so a short transaction keeps its cheaper path
 * and a long-lived one stops paying Node's per-callback cost (see bench/results/perf-vs-haproxy.md).
 *
 * Absent addon (no C compiler at install, another platform), `LICPROXY_NATIVE_RELAY=0`, or raw handles off: null,
 * and every connection is relayed in JavaScript as before, with the same behaviour.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { internalsSwitchedOff } from './node-internals.ts';

/** The ends of a pair as JavaScript sees them (slots of the shared array, see native/relay.c). */
export const enum RelayStat {
  ClientRead = 0,
  ClientWritten = 1,
  ServerRead = 2,
  ServerWritten = 3,
  /** 0: no FIN yet, 1: the client's came first, 2: the server's. */
  FirstEnd = 4,
  /** Bit 1: the client sent its FIN; bit 2: the server did. */
  Ended = 5,
  /** -1: no error; 0: on the client side; 1: on the server side. */
  ErrSide = 6,
  /** The errno (positive) of that error. */
  ErrCode = 7,
  /** Bytes waiting to be written to the client (at most one read: the server is not read meanwhile). */
  ClientPending = 8,
  /** The same towards the server. */
  ServerPending = 9,
}

/** What a promoted connection implements: called once when its pair ends by itself. */
export interface RelayOwner {
  nativeEnded(): void;
}

interface Addon {
  init(callback: (id: number) => void, stats: Float64Array): void;
  adopt(clientFd: number, serverFd: number): number;
  stats(id: number): void;
  close(id: number, resetClient: boolean, resetServer: boolean): void;
  keepAlive(id: number, seconds: number): void;
  live(): number;
}

export class NativeRelay {
  /** Counters of the pair last asked about (stats, close) or ended (the owner's nativeEnded reads them). */
  readonly stats = new Float64Array(10);
  readonly #addon: Addon;
  readonly #owners: (RelayOwner | undefined)[] = [];

  constructor(addon: Addon) {
    this.#addon = addon;
    addon.init((id) => this.#ended(id), this.stats);
  }

  /** Relays between the two descriptors from now on; the caller closes its own handles right after. */
  adopt(clientFd: number, serverFd: number, owner: RelayOwner): number {
    const id = this.#addon.adopt(clientFd, serverFd);
    this.#owners[id] = owner;
    return id;
  }

  /** Fills `stats` for this pair. */
  read(id: number): Float64Array {
    this.#addon.stats(id);
    return this.stats;
  }

  /** Ends the pair now (no nativeEnded call); `stats` holds its final counters. */
  close(id: number, resetClient: boolean, resetServer: boolean): Float64Array {
    this.#owners[id] = undefined;
    this.#addon.close(id, resetClient, resetServer);
    return this.stats;
  }

  keepAlive(id: number, seconds: number): void {
    this.#addon.keepAlive(id, seconds);
  }

  get live(): number {
    return this.#addon.live();
  }

  #ended(id: number): void {
    const o = this.#owners[id];
    this.#owners[id] = undefined;
    o?.nativeEnded();
  }
}

/** Where the build puts the addon: native/build/ at the package root (two levels up from src/proxy or dist/proxy). */
export const ADDON_PATH = fileURLToPath(new URL('../../native/build/relay.node', import.meta.url));

/** Why the native relay is off ('' when it is on). */
export let nativeRelayOff = '';

function load(): NativeRelay | null {
  if (process.env.LICPROXY_NATIVE_RELAY === '0') {
    nativeRelayOff = 'LICPROXY_NATIVE_RELAY=0';
    return null;
  }
  if (internalsSwitchedOff) {
    nativeRelayOff = 'LICPROXY_RAW_HANDLES=0';
    return null;
  }
  if (!existsSync(ADDON_PATH)) {
    nativeRelayOff = 'native/build/relay.node is not built (npm run build:native needs a C compiler)';
    return null;
  }
  try {
    return new NativeRelay(createRequire(import.meta.url)(ADDON_PATH) as Addon);
  } catch (err) {
    nativeRelayOff = `native/build/relay.node did not load: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
    return null;
  }
}

/** The relay, or null (see nativeRelayOff). */
export let nativeRelay: NativeRelay | null = load();

/** The start-up self-test found the raw handles unusable: no descriptor to hand over either. */
export function disableNativeRelay(why: string): void {
  if (nativeRelay === null) return;
  nativeRelay = null;
  nativeRelayOff = why;
}
