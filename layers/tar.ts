/**
 * A streaming tar reader: push chunks in, get entries and their data out, synchronously.
 *
 * Written here rather than taken from tar-stream because the extractor needs what tar-stream
 * does not give: GNU sparse files (old GNU 'S' headers and PAX sparse 0.0, 0.1 and 1.0),
 * binary-safe PAX xattr values (SCHILY.xattr.*, e.g. security.capability), and no per-entry
 * stream objects (measured: per-entry streams cost more than the file writes themselves).
 * Formats read: v7, ustar (with prefix), GNU (long names, long links, base-256 numbers), PAX.
 * The header codec (fields, checksum, PAX records and times) is in tar-header.ts.
 */
import { BLOCK, checksumOk, corrupt, isZero, MAX_META, META_NAMES, num, parsePax, paxTime, str, TYPES, type TarEntry } from './tar-header.js';

export interface TarHandler {
  entry(e: TarEntry): void;
  /** A piece of the current entry's content, to be written at `offset` in the file. */
  data(chunk: Buffer, offset: number): void;
  entryEnd(e: TarEntry): void;
}

type State = 'header' | 'data' | 'meta' | 'sparsemap' | 'sparseext' | 'skip' | 'end';

export class TarParser {
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private state: State = 'header';
  /** Bytes of the current entry's stored data still to come. */
  private remaining = 0;
  /** Padding after the data. */
  private pad = 0;
  private entry?: TarEntry;
  private metaKind = '';
  private metaParts: Buffer[] = [];
  private pax: Array<[string, Buffer]> = [];
  private globalPax: Array<[string, Buffer]> = [];
  private longName?: string;
  private longLink?: string;
  // Sparse segments still to fill, and position inside the current one.
  private segIndex = 0;
  private segDone = 0;
  private linearOffset = 0;
  private zeroBlocks = 0;
  private oldSparse?: { map: Array<[number, number]>; realSize: number };
  entries = 0;

  constructor(private h: TarHandler) {}

  get ended(): boolean {
    return this.state === 'end';
  }

  /** Take `n` bytes from the pending buffers (which hold at least n). */
  private take(n: number): Buffer {
    if (this.pending[0].length >= n) {
      const b = this.pending[0];
      if (b.length === n) {
        this.pending.shift();
      } else {
        this.pending[0] = b.subarray(n);
      }
      this.pendingLen -= n;
      return b.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let o = 0;
    while (o < n) {
      const b = this.pending[0];
      const k = Math.min(b.length, n - o);
      b.copy(out, o, 0, k);
      o += k;
      if (k === b.length) this.pending.shift();
      else this.pending[0] = b.subarray(k);
    }
    this.pendingLen -= n;
    return out;
  }

  write(chunk: Buffer): void {
    if (this.state === 'end') return;
    this.pending.push(chunk);
    this.pendingLen += chunk.length;
    while (this.pendingLen > 0 && !this.ended) {
      if (this.state === 'data') {
        // Hand data straight through without copying.
        const b = this.pending[0];
        const n = Math.min(b.length, this.remaining);
        const piece = n === b.length ? b : b.subarray(0, n);
        if (n === b.length) this.pending.shift();
        else this.pending[0] = b.subarray(n);
        this.pendingLen -= n;
        this.remaining -= n;
        this.emitData(piece);
        if (this.remaining === 0) this.finishData();
        continue;
      }
      if (this.state === 'skip') {
        const n = Math.min(this.pendingLen, this.pad);
        this.take(n);
        this.pad -= n;
        if (this.pad === 0) this.state = 'header';
        continue;
      }
      if (this.pendingLen < BLOCK) return;
      const block = this.take(BLOCK);
      if (this.state === 'header') this.header(block);
      else if (this.state === 'meta') this.metaBlock(block);
      else if (this.state === 'sparseext') this.sparseExtBlock(block);
      else if (this.state === 'sparsemap') this.sparseMapBlock(block);
    }
  }

  /** Call at the end of the stream: a truncated archive is an error. */
  end(): void {
    if (this.state === 'end') return;
    if (this.state === 'header' && this.pendingLen === 0) {
      // GNU tar accepts an archive without its two closing zero blocks; so do we, but only at a header boundary.
      this.state = 'end';
      return;
    }
    throw corrupt(`the stream ended inside an entry${this.entry ? ` (${this.entry.path})` : ''}`, { state: this.state });
  }

  private emitData(piece: Buffer): void {
    const e = this.entry!;
    if (!e.sparse) {
      this.h.data(piece, this.linearOffset);
      this.linearOffset += piece.length;
      return;
    }
    // Spread stored bytes over the sparse map's segments.
    let p = 0;
    while (p < piece.length) {
      const seg = e.sparse.map[this.segIndex];
      if (!seg) throw corrupt(`sparse file ${e.path} has more data than its map describes`);
      const k = Math.min(piece.length - p, seg[1] - this.segDone);
      if (k > 0) this.h.data(piece.subarray(p, p + k), seg[0] + this.segDone);
      p += k;
      this.segDone += k;
      if (this.segDone === seg[1]) {
        this.segIndex++;
        this.segDone = 0;
      }
    }
  }

  private finishData(): void {
    const e = this.entry!;
    this.entry = undefined;
    this.h.entryEnd(e);
    this.state = this.pad ? 'skip' : 'header';
  }

  private header(h: Buffer): void {
    if (isZero(h)) {
      this.zeroBlocks++;
      if (this.zeroBlocks >= 2) this.state = 'end';
      return;
    }
    this.zeroBlocks = 0;
    if (!checksumOk(h)) throw corrupt(`header checksum mismatch after ${this.entries} entries`, { entries: this.entries });
    const flag = String.fromCharCode(h[156]);
    const size = num(h, 124, 136);
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      // Meta headers are held in memory whole: bound them (GNU tar's own long names stop at
      // PATH_MAX; a pax record set of a real file, xattrs included, is a few KiB).
      if (size > MAX_META) {
        throw corrupt(`a ${META_NAMES[flag]} of ${size} bytes after ${this.entries} entries is over the ${MAX_META >> 20} MiB limit`, { entries: this.entries, size });
      }
      this.metaKind = flag;
      this.metaParts = [];
      this.remaining = size;
      this.pad = (BLOCK - (size % BLOCK)) % BLOCK;
      if (size === 0) this.metaDone();
      else this.state = 'meta';
      return;
    }
    if (flag === 'V') {
      this.skipData(size);
      return;
    }
    if (flag === 'M') throw corrupt('multi-volume archives are not supported');
    const type = TYPES[flag];
    const magic = h.toString('latin1', 257, 263);
    const ustar = magic === 'ustar\0';
    let name = str(h, 0, 100);
    if (ustar) {
      const prefix = str(h, 345, 500);
      if (prefix) name = prefix + '/' + name;
    }
    const e: TarEntry = {
      path: this.longName ?? name,
      type: type ?? 'file',
      mode: num(h, 100, 108) & 0o7777,
      uid: num(h, 108, 116),
      gid: num(h, 116, 124),
      mtime: num(h, 136, 148),
      size,
      linkname: this.longLink ?? str(h, 157, 257),
      devmajor: flag === '3' || flag === '4' ? num(h, 329, 337) : 0,
      devminor: flag === '3' || flag === '4' ? num(h, 337, 345) : 0,
      xattrs: new Map(),
    };
    this.longName = this.longLink = undefined;
    if (!type && flag !== 'S') {
      // Unknown types: tar's rule is to treat them as regular files.
      e.type = 'file';
    }
    let sparseMajor: number | undefined;
    let sparse01Map: string | undefined;
    const sparse00: number[] = [];
    let sparseRealSize: number | undefined;
    for (const [k, v] of [...this.globalPax, ...this.pax]) {
      const s = () => v.toString('utf8');
      switch (k) {
        case 'path': e.path = s(); break;
        case 'linkpath': e.linkname = s(); break;
        case 'size': e.size = Number(s()); break;
        case 'uid': e.uid = Number(s()); break;
        case 'gid': e.gid = Number(s()); break;
        case 'mtime': e.mtime = paxTime(s()); break;
        case 'GNU.sparse.major': sparseMajor = Number(s()); break;
        case 'GNU.sparse.name': e.path = s(); break;
        case 'GNU.sparse.realsize': case 'GNU.sparse.size': sparseRealSize = Number(s()); break;
        case 'GNU.sparse.map': sparse01Map = s(); break;
        case 'GNU.sparse.offset': case 'GNU.sparse.numbytes': sparse00.push(Number(s())); break;
        default:
          if (k.startsWith('SCHILY.xattr.')) e.xattrs.set(k.slice(13), v);
          else if (k.startsWith('LIBARCHIVE.xattr.')) e.xattrs.set(decodeURIComponent(k.slice(17)), Buffer.from(s(), 'base64'));
      }
    }
    this.pax = [];
    this.entries++;
    this.entry = e;
    this.linearOffset = 0;
    this.segIndex = 0;
    this.segDone = 0;
    // Only regular files carry data (a GNU dump directory's listing is skipped, not extracted).
    this.extraSkip = e.type === 'file' ? 0 : e.size;
    if (e.type !== 'file') e.size = 0;
    if (flag === 'S') {
      const map: Array<[number, number]> = [];
      for (let i = 0; i < 4; i++) {
        const off = 386 + i * 24;
        if (h[off] === 0) break;
        map.push([num(h, off, off + 12), num(h, off + 12, off + 24)]);
      }
      e.type = 'file';
      this.oldSparse = { map, realSize: num(h, 483, 495) };
      if (h[482]) {
        this.state = 'sparseext';
        return;
      }
      e.sparse = this.oldSparse;
      this.oldSparse = undefined;
    } else if (sparseMajor === 1) {
      e.sparse = { realSize: sparseRealSize ?? e.size, map: [] };
      // The map is at the start of the data, in 512-byte blocks of decimal lines.
      this.sparseText = '';
      this.state = 'sparsemap';
      this.remaining = e.size;
      return;
    } else if (sparse01Map !== undefined || sparse00.length) {
      const nums = sparse01Map !== undefined ? (sparse01Map ? sparse01Map.split(',').map(Number) : []) : sparse00;
      const map: Array<[number, number]> = [];
      for (let i = 0; i + 1 < nums.length; i += 2) map.push([nums[i], nums[i + 1]]);
      e.sparse = { realSize: sparseRealSize ?? e.size, map };
    }
    this.startData(e);
  }

  private sparseText = '';
  private extraSkip = 0;

  private startData(e: TarEntry): void {
    this.h.entry(e);
    const stored = e.type === 'file' ? e.size : 0;
    this.remaining = stored;
    this.pad = (BLOCK - (stored % BLOCK)) % BLOCK;
    if (stored === 0) {
      if (this.extraSkip) this.pad = this.extraSkip + ((BLOCK - (this.extraSkip % BLOCK)) % BLOCK);
      this.entry = undefined;
      this.h.entryEnd(e);
      this.state = this.pad ? 'skip' : 'header';
    } else {
      this.state = 'data';
    }
  }

  private skipData(size: number): void {
    this.pad = size + ((BLOCK - (size % BLOCK)) % BLOCK);
    this.state = this.pad ? 'skip' : 'header';
  }

  private metaBlock(b: Buffer): void {
    const n = Math.min(BLOCK, this.remaining);
    this.metaParts.push(b.subarray(0, n));
    this.remaining -= n;
    if (this.remaining === 0) this.metaDone();
  }

  private metaDone(): void {
    const buf = Buffer.concat(this.metaParts);
    if (this.metaKind === 'x') this.pax = parsePax(buf);
    else if (this.metaKind === 'g') this.globalPax = parsePax(buf);
    else if (this.metaKind === 'L') this.longName = str(buf, 0, buf.length);
    else if (this.metaKind === 'K') this.longLink = str(buf, 0, buf.length);
    this.state = 'header';
  }

  private sparseExtBlock(b: Buffer): void {
    for (let i = 0; i < 21; i++) {
      const off = i * 24;
      if (b[off] === 0) break;
      this.oldSparse!.map.push([num(b, off, off + 12), num(b, off + 12, off + 24)]);
    }
    if (b[504]) return;
    this.entry!.sparse = this.oldSparse;
    this.oldSparse = undefined;
    this.startData(this.entry!);
  }

  private sparseMapBlock(b: Buffer): void {
    const e = this.entry!;
    this.remaining -= BLOCK;
    this.sparseText += b.toString('latin1');
    const lines = this.sparseText.split('\n');
    const count = Number(lines[0]);
    // Complete when the count line and 2*count number lines are present.
    if (lines.length - 1 >= 1 + 2 * count) {
      const map: Array<[number, number]> = [];
      for (let i = 0; i < count; i++) map.push([Number(lines[1 + 2 * i]), Number(lines[2 + 2 * i])]);
      e.sparse!.map = map;
      const stored = this.remaining;
      e.size = stored;
      this.h.entry(e);
      this.pad = (BLOCK - (stored % BLOCK)) % BLOCK;
      if (stored === 0) {
        this.entry = undefined;
        this.h.entryEnd(e);
        this.state = this.pad ? 'skip' : 'header';
      } else {
        this.state = 'data';
      }
      return;
    }
    if (this.remaining <= 0) throw corrupt(`sparse map of ${e.path} runs past its data`);
  }
}
