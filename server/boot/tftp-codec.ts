/**
 * The TFTP protocol as pure functions: RFC 1350 packets (read requests only are served),
 * RFC 2347 option negotiation with blksize (RFC 2348), tsize and timeout (RFC 2349), the
 * request path check, and netascii conversion. The server that applies them is tftp.ts.
 */
import { posix, sep } from 'node:path';

export const OP = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;
export const ERR = { NOT_DEFINED: 0, NOT_FOUND: 1, ACCESS: 2, ILLEGAL: 4, UNKNOWN_TID: 5, OPTION: 8 } as const;

export const DEFAULT_BLKSIZE = 512;
export const MIN_BLKSIZE = 8;
export const MAX_BLKSIZE = 65464;
/**
 * The longest retransmission timeout a client may ask for. RFC 2349 allows 255 s, but
 * every slot a silent client holds is held for (retries + 1) × timeout: 64 requests
 * asking 255 s and never answering would hold all transfers for 25 minutes.
 */
export const MAX_TIMEOUT_S = 5;

export interface TftpRequest {
  op: 'read' | 'write';
  filename: string;
  mode: 'octet' | 'netascii' | 'mail';
  /** Options by lower-case name, values as sent. */
  options: Record<string, string>;
}

/** Parse an RRQ/WRQ; undefined when the packet is not a well-formed request. */
export function parseRequest(b: Buffer): TftpRequest | undefined {
  if (b.length < 4) return undefined;
  const op = b.readUInt16BE(0);
  if (op !== OP.RRQ && op !== OP.WRQ) return undefined;
  const parts = b.subarray(2).toString('latin1').split('\0');
  // A request ends with a NUL: the last split part is empty.
  if (parts.length < 3 || parts[parts.length - 1] !== '') return undefined;
  parts.pop();
  const [filename, modeRaw, ...opts] = parts;
  const mode = modeRaw.toLowerCase();
  if (!filename || (mode !== 'octet' && mode !== 'netascii' && mode !== 'mail') || opts.length % 2) return undefined;
  const options: Record<string, string> = {};
  for (let i = 0; i < opts.length; i += 2) options[opts[i].toLowerCase()] = opts[i + 1];
  return { op: op === OP.RRQ ? 'read' : 'write', filename, mode, options };
}

export function encodeData(block: number, data: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt16BE(OP.DATA, 0);
  h.writeUInt16BE(block & 0xffff, 2);
  return Buffer.concat([h, data]);
}

export function encodeError(code: number, message: string): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt16BE(OP.ERROR, 0);
  h.writeUInt16BE(code, 2);
  return Buffer.concat([h, Buffer.from(message + '\0', 'latin1')]);
}

export function encodeOack(options: Record<string, string>): Buffer {
  const h = Buffer.alloc(2);
  h.writeUInt16BE(OP.OACK, 0);
  return Buffer.concat([h, Buffer.from(Object.entries(options).map(([k, v]) => `${k}\0${v}\0`).join(''), 'latin1')]);
}

export interface Negotiated {
  blksize: number;
  timeoutMs: number;
  /** The options to acknowledge (OACK); empty → start with DATA block 1 directly. */
  oack: Record<string, string>;
}

/**
 * RFC 2347–2349: accept blksize (capped at maxBlksize), tsize (answered with the
 * file's size) and timeout (1 s to maxTimeoutS, default MAX_TIMEOUT_S); ignore unknown
 * options. An out-of-range blksize/timeout is ignored rather than refused, as the RFCs
 * allow (a server may not change a timeout, only decline it: the default is used).
 */
export function negotiate(options: Record<string, string>, size: number, o: { maxBlksize?: number; timeoutMs: number; maxTimeoutS?: number }): Negotiated {
  const oack: Record<string, string> = {};
  let blksize = DEFAULT_BLKSIZE;
  let timeoutMs = o.timeoutMs;
  const bs = options['blksize'];
  if (bs !== undefined && /^\d+$/.test(bs) && Number(bs) >= MIN_BLKSIZE) {
    blksize = Math.min(Number(bs), o.maxBlksize ?? MAX_BLKSIZE, MAX_BLKSIZE);
    oack['blksize'] = String(blksize);
  }
  if (options['tsize'] !== undefined) oack['tsize'] = String(size);
  const to = options['timeout'];
  const maxTimeoutS = Math.min(o.maxTimeoutS ?? MAX_TIMEOUT_S, 255);
  if (to !== undefined && /^\d+$/.test(to) && Number(to) >= 1 && Number(to) <= maxTimeoutS) {
    timeoutMs = Number(to) * 1000;
    oack['timeout'] = to;
  }
  return { blksize, timeoutMs, oack };
}

/**
 * Where a requested name points inside the root, or a reason to refuse it. Firmware
 * sends "pxelinux.cfg/01-…", "/boot.ipxe", sometimes "\\path" or the server's full path.
 */
export function resolveRequestPath(root: string, requested: string): { ok: true; rel: string } | { ok: false; reason: string } {
  let p = requested.replace(/\\/g, '/');
  const rootPosix = root.split(sep).join('/').replace(/\/+$/, '');
  if (p.startsWith(rootPosix + '/')) p = p.slice(rootPosix.length + 1);
  if (p.includes('\0')) return { ok: false, reason: 'a NUL in the name' };
  const segs = p.split('/').filter((s) => s !== '' && s !== '.');
  if (segs.some((s) => s === '..')) return { ok: false, reason: '".." in the name' };
  if (segs.length === 0) return { ok: false, reason: 'no file name' };
  return { ok: true, rel: posix.join(...segs) };
}

/** netascii: CR LF line ends, a lone CR becomes CR NUL (RFC 1350, after RFC 764). */
export function toNetascii(b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(netasciiLength(b));
  let o = 0;
  for (const c of b) {
    if (c === 0x0a) {
      out[o++] = 0x0d;
      out[o++] = 0x0a;
    } else if (c === 0x0d) {
      out[o++] = 0x0d;
      out[o++] = 0x00;
    } else out[o++] = c;
  }
  return out;
}

/** How many bytes `b` takes in netascii (what tsize announces in that mode). */
export function netasciiLength(b: Buffer): number {
  let extra = 0;
  for (let i = b.indexOf(0x0a); i !== -1; i = b.indexOf(0x0a, i + 1)) extra++;
  for (let i = b.indexOf(0x0d); i !== -1; i = b.indexOf(0x0d, i + 1)) extra++;
  return b.length + extra;
}

/**
 * netascii conversion of a file read in order, one block at a time: memory stays at
 * one block and one input chunk whatever the file's size (converting the whole file
 * took four requests for a 24 MiB file to 1.6 GiB). `read(n)` returns the next n
 * converted bytes (fewer only at the end).
 */
export class NetasciiReader {
  private carry: Buffer = Buffer.alloc(0);
  private pos = 0;
  private eof = false;
  constructor(private readonly readRaw: (position: number, length: number) => Promise<Buffer>) {}
  async read(n: number): Promise<Buffer> {
    const parts: Buffer[] = [this.carry];
    let have = this.carry.length;
    while (have < n && !this.eof) {
      // Each input byte gives one or two output bytes: n - have input bytes never
      // overshoot by more than one block.
      const raw = await this.readRaw(this.pos, n - have);
      if (raw.length === 0) {
        this.eof = true;
        break;
      }
      this.pos += raw.length;
      const conv = toNetascii(raw);
      parts.push(conv);
      have += conv.length;
    }
    const all = Buffer.concat(parts);
    this.carry = all.subarray(n);
    return all.subarray(0, n);
  }
}
