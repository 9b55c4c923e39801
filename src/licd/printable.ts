/**
 * Characters a name must not carry into status text, logs or a terminal: C0 and C1 controls and DEL (escape
 * sequences), the Unicode bidi controls (U+202A-202E, U+2066-2069, and the marks U+200E, U+200F, U+061C, which can
 * make `alice` and a forged line look alike), lone surrogates, and U+FFFD (what invalid UTF-8 decodes to).
 */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufffd]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** `name` with every unprintable character (above) replaced by `?`; the same string when there is none. */
export function printableName(name: string): string {
  UNPRINTABLE.lastIndex = 0;
  return UNPRINTABLE.test(name) ? name.replace(UNPRINTABLE, '?') : name;
}
