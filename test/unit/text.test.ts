import { describe, expect, it } from 'vitest';
import { printable, printableLines } from '../../common/text.js';

describe('printable (stored text on a terminal)', () => {
  it('shows every control character as a visible escape and keeps the rest', () => {
    expect(printable('a\x1b]52;c;eA==\x07b')).toBe('a\\x1b]52;c;eA==\\x07b');
    expect(printable('\x1b[2J\u009b2J\x7f\x00')).toBe('\\x1b[2J\\x9b2J\\x7f\\x00');
    expect(printable('x\r\ny\tz')).toBe('x\\r\\ny\\tz');
    expect(printable('\u202eevil\u2066')).toBe('\\u202eevil\\u2066');
    expect(printable('héllo wörld 日本')).toBe('héllo wörld 日本');
    for (let c = 0; c < 0xa0; c++) {
      const out = printable(String.fromCharCode(c));
      expect(/[\u0000-\u001f\u007f-\u009f]/.test(out), `char ${c}`).toBe(false);
    }
  });
  it('keeps intended line ends only in printableLines', () => {
    expect(printableLines('a\nb\x1bc\n')).toBe('a\nb\\x1bc\n');
  });
});
