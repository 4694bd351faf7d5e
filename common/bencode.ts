/**
 * Bencode (BEP 3), Ferry's own: the server writes its .torrent files and tracker answers with
 * it. Encoding is canonical (dictionary keys sorted as raw bytes, integers without leading
 * zeros), which is what makes a torrent's info-hash a pure function of the blob. The decoder is
 * bounded (depth, size) and is used for the tests and to read a torrent back.
 */
import { FerryError } from './errors.js';

export type BValue = number | bigint | string | Buffer | BValue[] | { [k: string]: BValue };

function fail(message: string): never {
  throw new FerryError('FERRY_E_BAD_BENCODE', message, { hint: 'the data is not valid bencode (BEP 3); it came from a broken or hostile peer' });
}

function enc(v: BValue, out: Buffer[]): void {
  if (typeof v === 'number' || typeof v === 'bigint') {
    if (typeof v === 'number' && !Number.isSafeInteger(v)) fail(`bencode integers must be integers, not ${v}`);
    out.push(Buffer.from(`i${v.toString()}e`));
  } else if (typeof v === 'string' || Buffer.isBuffer(v)) {
    const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    out.push(Buffer.from(`${b.length}:`), b);
  } else if (Array.isArray(v)) {
    out.push(Buffer.from('l'));
    for (const x of v) enc(x, out);
    out.push(Buffer.from('e'));
  } else {
    out.push(Buffer.from('d'));
    const keys = Object.keys(v).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const k of keys) {
      if (v[k] === undefined) continue;
      enc(k, out);
      enc(v[k], out);
    }
    out.push(Buffer.from('e'));
  }
}

export function bencode(v: BValue): Buffer {
  const out: Buffer[] = [];
  enc(v, out);
  return Buffer.concat(out);
}

const MAX_DEPTH = 32;

/** Decode; strings come back as Buffers. Throws FERRY_E_BAD_BENCODE on anything malformed or trailing. */
export function bdecode(buf: Buffer, maxBytes = 16 * 1024 * 1024): BValue {
  if (buf.length > maxBytes) fail(`bencode of ${buf.length} bytes is larger than the limit of ${maxBytes}`);
  let i = 0;
  const int = (end: number): number => {
    const s = buf.toString('latin1', i, end);
    if (!/^(0|-?[1-9][0-9]*)$/.test(s)) fail(`bad bencode integer "${s.slice(0, 30)}" at ${i}`);
    const n = Number(s);
    if (!Number.isSafeInteger(n)) fail(`bencode integer ${s.slice(0, 30)} is too large`);
    return n;
  };
  const val = (depth: number): BValue => {
    if (depth > MAX_DEPTH) fail(`bencode nested deeper than ${MAX_DEPTH}`);
    if (i >= buf.length) fail('bencode ends early');
    const c = buf[i];
    if (c === 0x69) {
      const e = buf.indexOf(0x65, i + 1);
      if (e < 0) fail('bencode integer not terminated');
      i++;
      const n = int(e);
      i = e + 1;
      return n;
    }
    if (c === 0x6c || c === 0x64) {
      i++;
      const list: BValue[] = [];
      const dict: Record<string, BValue> = {};
      let last: Buffer | undefined;
      while (true) {
        if (i >= buf.length) fail('bencode list or dictionary not terminated');
        if (buf[i] === 0x65) {
          i++;
          return c === 0x6c ? list : dict;
        }
        if (c === 0x6c) list.push(val(depth + 1));
        else {
          const k = val(depth + 1);
          if (!Buffer.isBuffer(k)) fail('bencode dictionary key is not a string');
          if (last && Buffer.compare(last, k) >= 0) fail('bencode dictionary keys are not sorted');
          last = k;
          dict[k.toString('utf8')] = val(depth + 1);
        }
      }
    }
    if (c >= 0x30 && c <= 0x39) {
      const colon = buf.indexOf(0x3a, i);
      if (colon < 0) fail('bencode string length not terminated');
      const n = int(colon);
      if (n < 0 || colon + 1 + n > buf.length) fail('bencode string runs past the end');
      const s = buf.subarray(colon + 1, colon + 1 + n);
      i = colon + 1 + n;
      return Buffer.from(s);
    }
    fail(`unexpected byte 0x${c.toString(16)} in bencode at ${i}`);
  };
  const v = val(0);
  if (i !== buf.length) fail(`${buf.length - i} bytes after the bencode value`);
  return v;
}
