import { randomBytes, timingSafeEqual } from 'node:crypto';

/** Hex digits of a handle's public id (64 bits): what status and logs show. */
const ID_HEX = 16;
/** Hex digits of the secret after it (128 bits): only the owning session ever sees them. */
const SECRET_HEX = 32;

/**
 * Issues `<server>.<16 hex id><32 hex secret>` handles (PROTOCOL.md "Handles"). A handle is a capability: whoever
 * presents it in full may RESUME, CHECKIN (after RESUME) or draw TOKENS under it, so it is random (192 bits from the
 * CSPRNG) and shown in full only in the GRANTED answer to its owner. Status and logs show `publicHandle()`, which
 * keeps the `<server>.` prefix the balancer routes by and says nothing about the secret.
 */
export class HandleIssuer {
  readonly #prefix: string;

  constructor(serverName: string) {
    this.#prefix = `${serverName}.`;
  }

  next(): string {
    return this.#prefix + randomBytes((ID_HEX + SECRET_HEX) / 2).toString('hex');
  }
}

/**
 * The non-secret part of a handle (`<server>.<16 hex id>`), unique among live handles; shown by STATUS and logs
 * and used as the lookup key, so finding a handle never compares secret bytes in variable time.
 */
export function publicHandle(handle: string): string {
  const dot = handle.lastIndexOf('.');
  return dot < 0 ? handle : handle.slice(0, dot + 1 + ID_HEX);
}

/** Full-handle equality in constant time (the length of a handle is not secret). */
export function sameHandle(known: string, presented: string): boolean {
  const a = Buffer.from(known);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Equality of two secrets (a CHECKOUT's `req=`) in constant time; their length is not secret. */
export const sameSecret = sameHandle;

/**
 * Values indexed by handle, found only by presenting the full handle: the lookup goes by the public id, the
 * secret is then compared in constant time. A wrong or partial handle is simply not found (no hint it exists).
 */
export class HandleMap<T extends { readonly handle: string }> {
  readonly #byId = new Map<string, T>();

  get size(): number {
    return this.#byId.size;
  }

  /** The value whose full handle is `presented`, or undefined. */
  get(presented: string): T | undefined {
    const v = this.#byId.get(publicHandle(presented));
    return v && sameHandle(v.handle, presented) ? v : undefined;
  }

  /** Same as `get(v.handle) === v`, without the secret comparison (the caller holds the value). */
  holds(v: T): boolean {
    return this.#byId.get(publicHandle(v.handle)) === v;
  }

  /** By the handle the caller issued or received from a peer (trusted), not one a client presented. */
  has(handle: string): boolean {
    return this.get(handle) !== undefined;
  }

  set(v: T): void {
    this.#byId.set(publicHandle(v.handle), v);
  }

  /** Removes the value of this exact handle; false when another value (or none) is stored under its id. */
  delete(handle: string): boolean {
    const v = this.get(handle);
    if (!v) return false;
    return this.#byId.delete(publicHandle(handle));
  }

  clear(): void {
    this.#byId.clear();
  }

  values(): IterableIterator<T> {
    return this.#byId.values();
  }
}
