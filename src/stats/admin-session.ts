/**
 * Sessions of the /stats page's admin forms (HAProxy's `stats admin`, SPEC 10): the admin token typed once into a
 * login form is exchanged for a random session id, sent back only as an HttpOnly, SameSite=Strict cookie, and a
 * CSRF token bound to that session, which every form of the page carries. The token itself never reaches a page.
 *
 * Sessions live in memory (a restart or a new token logs everyone out), expire after SESSION_TTL_MS, and are
 * bounded in number (the oldest goes first). Ids are kept hashed and compared through the hash map, CSRF tokens
 * with timingSafeEqual.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'lpx_admin';
export const SESSION_TTL_MS = 8 * 3_600_000;
const MAX_SESSIONS = 64;

export interface AdminSession {
  csrf: string;
  expires: number;
}

export class AdminSessions {
  /** sha256(id) -> session, insertion (= age) order. */
  readonly #byHash = new Map<string, AdminSession>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** A new session: its id (for the cookie) and CSRF token (for the forms). */
  create(): { id: string; session: AdminSession } {
    this.#sweep();
    while (this.#byHash.size >= MAX_SESSIONS) this.#byHash.delete(this.#byHash.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    const session = { csrf: randomBytes(32).toString('base64url'), expires: this.#now() + SESSION_TTL_MS };
    this.#byHash.set(hash(id), session);
    return { id, session };
  }

  /** The session a Cookie header names; null when absent, unknown or expired. */
  fromCookie(cookieHeader: string | undefined): AdminSession | null {
    const id = readCookie(cookieHeader, SESSION_COOKIE);
    if (id === null || id.length > 100) return null;
    const h = hash(id);
    const s = this.#byHash.get(h);
    if (s === undefined) return null;
    if (s.expires <= this.#now()) {
      this.#byHash.delete(h);
      return null;
    }
    return s;
  }

  end(cookieHeader: string | undefined): void {
    const id = readCookie(cookieHeader, SESSION_COOKIE);
    if (id !== null) this.#byHash.delete(hash(id));
  }

  #sweep(): void {
    const now = this.#now();
    for (const [h, s] of this.#byHash) if (s.expires <= now) this.#byHash.delete(h);
  }
}

/** Whether a form's CSRF field is the session's token. */
export function csrfMatches(session: AdminSession, given: string | undefined): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(session.csrf);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function sessionCookie(id: string): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_TTL_MS / 1000}`;
}

export function clearedCookie(): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;
}

function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

function hash(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}
