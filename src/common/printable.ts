/**
 * Text from a file or a peer made safe to print on a terminal or in a log line: control characters that a
 * terminal acts on (C0 such as ESC, DEL, C1 such as CSI and OSC), line breaks, and the Unicode controls that
 * reorder or hide text (bidi embeddings, overrides and isolates) are written as `\xHH` / `\uHHHH` escapes, so a
 * hostile key or value can neither recolour, retitle or rewrite the operator's terminal nor disguise a line.
 */
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
