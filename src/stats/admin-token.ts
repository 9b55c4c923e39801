/**
 * The admin API's bearer token check. Both sides are hashed to equal-length digests before `timingSafeEqual`, so
 * neither the token's bytes nor its length leak through response timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** Shorter tokens can be guessed by trying them against the API (`openssl rand -hex 16` writes 32 characters). */
export const MIN_TOKEN_BYTES = 16;
/** A token file is one short line; a bigger file is a wrong path, not a token. */
export const MAX_TOKEN_FILE_BYTES = 4096;

/**
 * What is wrong with a token file's content (null: usable). The content is trimmed, as a trailing newline is
 * how editors and `echo` write it; what remains must be one word of visible ASCII, since that is all an
 * `Authorization: Bearer` header can carry: a token with a space could never authenticate.
 */
export function adminTokenProblem(content: string): string | null {
  const t = content.trim();
  if (t.length === 0) return content.length === 0 ? 'is empty' : 'holds only whitespace';
  if (/\s/.test(t)) return 'holds a token with whitespace inside: a bearer token is one word (it could never authenticate)';
  if (!/^[\x21-\x7e]+$/.test(t)) return 'holds characters other than visible ASCII: a bearer token is letters, digits and punctuation';
  if (t.length < MIN_TOKEN_BYTES) return `holds a token of ${t.length} bytes: use at least ${MIN_TOKEN_BYTES} (e.g. openssl rand -hex 16)`;
  return null;
}

export class AdminToken {
  readonly #digest: Buffer;

  constructor(token: string) {
    const problem = adminTokenProblem(token);
    if (problem) throw new Error(`admin token ${problem}`);
    this.#digest = digest(token.trim());
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
