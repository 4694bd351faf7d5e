/**
 * Stored text made safe to print on a terminal. Events, results and node properties can come
 * from a deploy token, which anyone on the boot network can read: their text must not reach the
 * operator's terminal as control sequences (screen clears, window titles, OSC 52 clipboard
 * writes). Every C0 and C1 control character and DEL is shown as a visible escape (`\x1b`,
 * `\n`); the text itself is kept, so nothing is hidden from the operator.
 */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

export function printable(s: string): string {
  return s.replace(CONTROL, (c) => NAMED[c] ?? (c.charCodeAt(0) <= 0xff ? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}` : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/** printable() for text that is several lines on purpose: its line ends are kept. */
export function printableLines(s: string): string {
  return s.split('\n').map(printable).join('\n');
}
