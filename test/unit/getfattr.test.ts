import { describe, expect, it } from 'vitest';
import { escapeGetfattr, parseGetfattr, unescapeGetfattr } from '../../layers/getfattr.js';

// The names getfattr and setfattr must carry through their dump format unchanged.
const NAMES = ['plain', 'with space', 'tab\there', 'new\nline', 'back\\slash', 'eq=sign', 'ñandú/日本語', '\\123 looks octal', '#hash', '"quoted"', '/abs/path/x', '\u007f', ''];

describe('getfattr dump format: one escaping, round-tripped', () => {
  it('unescape(escape(s)) is s for every byte class', () => {
    for (const s of NAMES) expect(unescapeGetfattr(escapeGetfattr(s))).toBe(s);
    let all = '';
    for (let c = 1; c < 0x80; c++) all += String.fromCharCode(c);
    expect(unescapeGetfattr(escapeGetfattr(all))).toBe(all);
  });

  it('escaped text holds no whitespace, "=" or raw non-ASCII (one line, one field)', () => {
    for (const s of NAMES) expect(escapeGetfattr(s)).toMatch(/^[\x21-\x3c\x3e-\x7e]*$/);
  });

  it('parses a dump written with the same escaping back to the same paths, names and values', () => {
    const files = new Map<string, [string, Buffer][]>([
      ['/t/with space', [['user.a=b', Buffer.from([0, 255, 10])], ['security.capability', Buffer.from('01000002', 'hex')]]],
      ['/t/ñandú\nx', [['user.é', Buffer.from('v')]]],
    ]);
    const lines: string[] = [];
    for (const [f, attrs] of files) {
      lines.push(`# file: ${escapeGetfattr(f)}`);
      for (const [k, v] of attrs) lines.push(`${escapeGetfattr(k)}=0s${v.toString('base64')}`);
      lines.push('');
    }
    const got = parseGetfattr(lines.join('\n'));
    expect([...got.keys()]).toEqual([...files.keys()]);
    for (const [f, attrs] of files) {
      const sorted = [...attrs].sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])));
      expect(got.get(f)).toEqual(sorted);
    }
  });
});
