/**
 * What a licd connection showed of itself while the proxy watched its start (license-session.ts), kept for the live
 * sessions list (GET /api/sessions, SPEC 10): the HELLO user, the public part of its handle, the features it
 * asked for. Filled only from lines the session already parsed for routing; nothing here reads a byte of a
 * connection that went plain, and a tcp pool never has one.
 *
 * Handles are secrets (PROTOCOL.md "Handles"): only `publicHandle()` (`<server>.<16 hex id>`, what licd's STATUS
 * shows) is kept, never the secret after it, and never a CHECKOUT's `req=` (a secret too). Client-sent text is
 * bounded and made printable here; the renderers escape it again for their format.
 */
import { publicHandle } from '../../licd/handles.ts';
import { printable } from '../../common/printable.ts';

/** Characters kept of a user name or a feature name. */
const MAX_TEXT = 64;
/** Distinct features kept per connection. */
const MAX_FEATURES = 8;
/** A licd handle as issued (handles.ts): a server name, a dot, 16 hex of public id and 32 of secret. */
const HANDLE_FORM = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\.[0-9a-f]{48}$/;
const GRANTED_HANDLE = / handle=(\S+)/;

export class SessionSeen {
  user: string | null = null;
  /** The public id of the last handle granted or presented (`<server>.<16 hex>`), never the full handle. */
  handle: string | null = null;
  readonly features: string[] = [];

  hello(user: string | undefined): void {
    if (user !== undefined) this.user = bounded(user, MAX_TEXT);
  }

  checkout(feature: string): void {
    if (feature === '' || this.features.length >= MAX_FEATURES) return;
    const f = bounded(feature, MAX_TEXT);
    if (!this.features.includes(f)) this.features.push(f);
  }

  /** A handle the client presented (RESUME / CHECKIN / TOKENS). */
  presented(handle: string): void {
    this.handle = safeHandle(handle) ?? this.handle;
  }

  /** A server's GRANTED line: its handle, if it carries one (a TOKENS grant does not). */
  granted(line: string): void {
    const m = GRANTED_HANDLE.exec(line);
    if (m !== null) this.handle = safeHandle(m[1]!) ?? this.handle;
  }
}

/**
 * The public id of a well-formed handle (`<server>.<48 hex>`), else null: a string of another form (a client's
 * garbage, a handle with something appended) could hold a secret anywhere, so none of it is kept.
 */
export function safeHandle(handle: string): string | null {
  return HANDLE_FORM.test(handle) ? publicHandle(handle) : null;
}

function bounded(s: string, max: number): string {
  return printable(s.length > max ? `${s.slice(0, max)}...` : s);
}
