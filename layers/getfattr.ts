/**
 * getfattr's dump format (`getfattr -d -e base64 --absolute-names`, `setfattr --restore`): the
 * one place that escapes and unescapes its names and paths (octal `\\NNN` for bytes outside
 * printable ASCII, `\\`, `=`) and parses its output. Used by the tree scanner (reading xattrs
 * for a layer) and by the extractor (writing them into a target).
 */

/** The octal escaping getfattr uses for names and paths in its dump format. */
export function escapeGetfattr(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    if (b <= 0x20 || b >= 0x7f || b === 0x5c || b === 0x3d) out += '\\' + b.toString(8).padStart(3, '0');
    else out += String.fromCharCode(b);
  }
  return out;
}

/** Undo getfattr's escaping of file names: `\\` and octal `\NNN` bytes. */
export function unescapeGetfattr(s: string): string {
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x5c && i + 3 < raw.length && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString('latin1'))) {
      bytes.push(parseInt(raw.subarray(i + 1, i + 4).toString('latin1'), 8));
      i += 3;
    } else if (raw[i] === 0x5c && raw[i + 1] === 0x5c) {
      bytes.push(0x5c);
      i += 1;
    } else bytes.push(raw[i]);
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Parse `getfattr -d -e base64 --absolute-names` output into path → sorted xattrs. */
export function parseGetfattr(out: string): Map<string, [string, Buffer][]> {
  const map = new Map<string, [string, Buffer][]>();
  let current: [string, Buffer][] | undefined;
  for (const line of out.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = [];
      map.set(unescapeGetfattr(line.slice('# file: '.length)), current);
      continue;
    }
    if (!current || line === '') continue;
    const eq = line.indexOf('=');
    const name = unescapeGetfattr(eq < 0 ? line : line.slice(0, eq));
    let v = eq < 0 ? '' : line.slice(eq + 1);
    let value: Buffer;
    if (v.startsWith('0s')) value = Buffer.from(v.slice(2), 'base64');
    else if (v.startsWith('0x')) value = Buffer.from(v.slice(2), 'hex');
    else {
      if (v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      value = Buffer.from(v, 'utf8');
    }
    current.push([name, value]);
  }
  for (const list of map.values()) list.sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])));
  return map;
}

