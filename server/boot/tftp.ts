/**
 * A read-only TFTP server for network boot firmware: RFC 1350 (read requests only),
 * RFC 2347 option negotiation with the blksize (RFC 2348), tsize and timeout
 * (RFC 2349) options. It serves the files under one directory and nothing else:
 * "..", absolute paths outside it and symlinks that lead out are refused.
 *
 * Packet parsing, option negotiation and path checks are pure functions (tftp-codec.ts);
 * the server applies them with one UDP socket per transfer (the TFTP "TID").
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { open, realpath, stat, type FileHandle } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { FerryError } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { encodeData, encodeError, encodeOack, ERR, negotiate, NetasciiReader, netasciiLength, OP, parseRequest, resolveRequestPath, toNetascii, type TftpRequest } from './tftp-codec.js';

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
