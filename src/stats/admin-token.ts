/**
 * The admin API's bearer token check. Both sides are hashed to equal-length digests before `timingSafeEqual`, so
 * neither the token's bytes nor its length leak through response timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export class AdminToken {
  readonly #digest: Buffer;

  constructor(token: string) {
    const t = token.trim();
    if (t.length === 0) throw new Error('admin token is empty');
    this.#digest = digest(t);
  }

  /** Whether an `Authorization` header value carries the token (`Bearer <token>`, scheme case-insensitive). */
  verify(authorization: string | undefined): boolean {
    if (!authorization) return false;
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (!m) return false;
    return timingSafeEqual(digest(m[1]!), this.#digest);
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
