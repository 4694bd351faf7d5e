/**
 * A read-only TFTP server for network boot firmware: RFC 1350 (read requests only),
 * RFC 2347 option negotiation with the blksize (RFC 2348), tsize and timeout
 * (RFC 2349) options. It serves the files under one directory and nothing else:
 * "..", absolute paths outside it and symlinks that lead out are refused.
 *
 * Packet parsing, option negotiation and path checks are pure functions; the
 * server applies them with one UDP socket per transfer (the TFTP "TID").
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { open, realpath, stat, type FileHandle } from 'node:fs/promises';
import { join, posix, sep } from 'node:path';
import { FerryError } from '../../common/errors.js';
import { log } from '../../common/log.js';

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

export interface TftpClientInfo {
  address: string;
  port: number;
}

export interface TftpOptions {
  /** The directory served; nothing outside it is. */
  root: string;
  host?: string;
  /** 69 is TFTP's port; 0 picks a free one (tests). */
  port?: number;
  /**
   * Files that exist only in Ferry's answer (boot.ipxe rendered for this server,
   * pxelinux.cfg/01-MAC from the node's boot action). Asked first; undefined falls
   * through to the directory.
   */
  virtualFile?: (rel: string, client: TftpClientInfo) => Buffer | undefined | Promise<Buffer | undefined>;
  /** Retransmission timeout when the client names none (default 2 s). */
  timeoutMs?: number;
  /** Retransmissions of one packet before giving up (default 5). */
  retries?: number;
  /** Concurrent transfers; more requests are refused (default 64). */
  maxTransfers?: number;
  /**
   * Concurrent transfers from one client address (default 8): one client cannot take
   * every slot. Firmware asks for one file at a time; a retry while the previous
   * transfer times out is the most a well-behaved client holds.
   */
  maxPerClient?: number;
  /** The longest timeout a client may negotiate, in seconds (default MAX_TIMEOUT_S). */
  maxTimeoutS?: number;
  maxBlksize?: number;
}

export interface TftpServer {
  address: string;
  port: number;
  /** Transfers in progress. */
  readonly active: number;
  close(): Promise<void>;
}

interface Source {
  /** The size sent as tsize; for netascii from a file, counted when first asked. */
  size(): Promise<number>;
  /** The next `length` bytes: transfers read in order, once each block. */
  read(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

function bufferSource(b: Buffer): Source {
  return { size: async () => b.length, read: async (o, n) => b.subarray(o, o + n), close: async () => {} };
}

function fileSource(fh: FileHandle, size: number): Source {
  return {
    size: async () => size,
    read: async (o, n) => {
      const b = Buffer.alloc(n);
      const { bytesRead } = await fh.read(b, 0, n, o);
      return b.subarray(0, bytesRead);
    },
    close: () => fh.close(),
  };
}

const COUNT_CHUNK = 1 << 16;

function netasciiFileSource(fh: FileHandle): Source {
  const raw = async (position: number, length: number) => {
    const b = Buffer.alloc(length);
    const { bytesRead } = await fh.read(b, 0, length, position);
    return b.subarray(0, bytesRead);
  };
  const reader = new NetasciiReader(raw);
  return {
    // Counted in 64 KiB reads, never the whole file in memory.
    size: async () => {
      let total = 0;
      for (let pos = 0; ; ) {
        const b = await raw(pos, COUNT_CHUNK);
        if (b.length === 0) return total;
        total += netasciiLength(b);
        pos += b.length;
      }
    },
    read: (_o, n) => reader.read(n),
    close: () => fh.close(),
  };
}

class TftpError extends Error {
  constructor(readonly tftpCode: number, message: string) {
    super(message);
  }
}

export async function startTftpServer(o: TftpOptions): Promise<TftpServer> {
  let root: string;
  try {
    root = await realpath(o.root);
    if (!(await stat(root)).isDirectory()) throw new Error('not a directory');
  } catch (e) {
    throw new FerryError('FERRY_E_TFTP_ROOT', `the TFTP directory ${o.root} is not a readable directory: ${(e as Error).message}`, {
      details: { root: o.root },
      hint: 'create it and put the boot loaders there (undionly.kpxe, ipxe.efi, lpxelinux.0…), or give another --tftp-root',
    });
  }
  const timeoutDefault = o.timeoutMs ?? 2000;
  const retries = o.retries ?? 5;
  const maxTransfers = o.maxTransfers ?? 64;
  const maxPerClient = o.maxPerClient ?? 8;
  /** Transfers in progress by client address. */
  const perClient = new Map<string, number>();
  /** Each transfer's socket and how to stop it (close() ends them all). */
  const transfers = new Map<Socket, () => void>();
  const host = o.host ?? '127.0.0.1';
  const udp = host.includes(':') ? 'udp6' : 'udp4';
  const main = createSocket({ type: udp, reuseAddr: false });

  const openSource = async (req: TftpRequest, client: TftpClientInfo): Promise<Source> => {
    const r = resolveRequestPath(root, req.filename);
    if (!r.ok) throw new TftpError(ERR.ACCESS, `access violation: ${r.reason}`);
    const v = await o.virtualFile?.(r.rel, client);
    if (v) return bufferSource(req.mode === 'netascii' ? toNetascii(v) : v);
    const full = join(root, r.rel);
    let real: string;
    try {
      real = await realpath(full);
    } catch {
      throw new TftpError(ERR.NOT_FOUND, 'file not found');
    }
    // A symlink may lead out of the directory: what counts is where it ends.
    if (real !== root && !real.startsWith(root + sep)) throw new TftpError(ERR.ACCESS, 'access violation: outside the TFTP directory');
    const st = await stat(real);
    if (!st.isFile()) throw new TftpError(ERR.NOT_FOUND, 'file not found');
    const fh = await open(real, 'r');
    return req.mode === 'netascii' ? netasciiFileSource(fh) : fileSource(fh, st.size);
  };

  const transfer = async (req: TftpRequest, client: RemoteInfo): Promise<void> => {
    const sock = createSocket(udp);
    let aborted = false;
    transfers.set(sock, () => {
      aborted = true;
      pending?.(-1);
    });
    const peer: TftpClientInfo = { address: client.address, port: client.port };
    let src: Source | undefined;
    const send = (b: Buffer) =>
      new Promise<void>((res, rej) => {
        if (aborted) return rej(new TftpError(-1, 'the server is stopping'));
        sock.send(b, client.port, client.address, () => res());
      });
    // Wait for the ACK of `block` from the client's TID, resending `packet` on timeout.
    let pending: ((ack: number) => void) | undefined;
    sock.on('message', (m, rinfo) => {
      if (rinfo.address !== client.address || rinfo.port !== client.port) {
        sock.send(encodeError(ERR.UNKNOWN_TID, 'unknown transfer ID'), rinfo.port, rinfo.address);
        return;
      }
      if (m.length >= 4 && m.readUInt16BE(0) === OP.ACK) pending?.(m.readUInt16BE(2));
      else if (m.length >= 4 && m.readUInt16BE(0) === OP.ERROR) pending?.(-1);
    });
    const exchange = async (packet: Buffer, block: number, timeoutMs: number): Promise<void> => {
      for (let attempt = 0; attempt <= retries; attempt++) {
        await send(packet);
        const got = await new Promise<number | 'timeout'>((resolve) => {
          const timer = setTimeout(() => {
            pending = undefined;
            resolve('timeout');
          }, timeoutMs);
          pending = (ack) => {
            // A duplicate ACK of the previous block is ignored (no resend: the
            // "sorcerer's apprentice" bug); the wanted one or an ERROR ends the wait.
            if (ack !== -1 && ack !== (block & 0xffff)) return;
            clearTimeout(timer);
            pending = undefined;
            resolve(ack);
          };
        });
        if (got === -1) throw new TftpError(-1, 'the client ended the transfer');
        if (got !== 'timeout') return;
      }
      throw new TftpError(-1, `no acknowledgement of block ${block} after ${retries + 1} tries`);
    };
    const started = Date.now();
    try {
      await new Promise<void>((res, rej) => {
        sock.once('error', rej);
        sock.bind(0, host, () => res());
      });
      if (req.op === 'write') throw new TftpError(ERR.ACCESS, 'this TFTP server is read-only');
      src = await openSource(req, peer);
      const size = req.options['tsize'] !== undefined ? await src.size() : 0;
      const n = negotiate(req.options, size, { maxBlksize: o.maxBlksize, timeoutMs: timeoutDefault, maxTimeoutS: o.maxTimeoutS });
      if (Object.keys(n.oack).length) await exchange(encodeOack(n.oack), 0, n.timeoutMs);
      let block = 1;
      let sent = 0;
      for (let offset = 0; ; offset += n.blksize, block++) {
        const data = await src.read(offset, n.blksize);
        await exchange(encodeData(block, data), block, n.timeoutMs);
        sent += data.length;
        if (data.length < n.blksize) break;
      }
      log.info('tftp sent', { file: req.filename, client: `${client.address}:${client.port}`, bytes: sent, blksize: n.blksize, ms: Date.now() - started });
    } catch (e) {
      const err = e instanceof TftpError ? e : new TftpError(ERR.NOT_DEFINED, (e as Error).message);
      log.info('tftp refused or failed', { file: req.filename, client: `${client.address}:${client.port}`, error: err.message });
      if (err.tftpCode >= 0) await send(encodeError(err.tftpCode, err.message)).catch(() => {});
    } finally {
      await src?.close().catch(() => {});
      transfers.delete(sock);
      const left = (perClient.get(client.address) ?? 1) - 1;
      if (left > 0) perClient.set(client.address, left);
      else perClient.delete(client.address);
      try {
        sock.close();
      } catch {
        /* already closed */
      }
    }
  };

  main.on('message', (m, rinfo) => {
    const req = parseRequest(m);
    if (!req) {
      main.send(encodeError(ERR.ILLEGAL, 'illegal TFTP operation'), rinfo.port, rinfo.address);
      return;
    }
    if (transfers.size >= maxTransfers) {
      main.send(encodeError(ERR.NOT_DEFINED, 'too many transfers; try again'), rinfo.port, rinfo.address);
      return;
    }
    const mine = perClient.get(rinfo.address) ?? 0;
    if (mine >= maxPerClient) {
      log.info('tftp refused', { file: req.filename, client: `${rinfo.address}:${rinfo.port}`, error: 'too many transfers from this address' });
      main.send(encodeError(ERR.NOT_DEFINED, 'too many transfers from this address; try again'), rinfo.port, rinfo.address);
      return;
    }
    perClient.set(rinfo.address, mine + 1);
    void transfer(req, rinfo);
  });
  await new Promise<void>((resolve, reject) => {
    main.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new FerryError('FERRY_E_LISTEN', `cannot listen for TFTP on ${host}:${o.port ?? 69}/udp: ${e.message}`, {
          details: { host, port: o.port ?? 69, errno: e.code },
          hint: e.code === 'EADDRINUSE' ? 'another TFTP server (dnsmasq --enable-tftp, tftpd-hpa) uses the port; stop it or choose another' : 'port 69 needs root; check the address',
        }),
      ),
    );
    main.bind(o.port ?? 69, host, () => resolve());
  });
  const a = main.address();
  log.info('tftp listening', { root, address: `${a.address}:${a.port}` });
  return {
    address: a.address,
    port: a.port,
    get active() {
      return transfers.size;
    },
    close: async () => {
      for (const stop of transfers.values()) stop();
      await new Promise<void>((r) => main.close(() => r()));
    },
  };
}
