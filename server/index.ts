/**
 * The image server: `startServer` is what `ferry serve` runs and what tests start on
 * a loopback port.
 */
import { createServer, type Server } from 'node:http';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serverInfoFile } from '../common/cli.js';
import { FerryError } from '../common/errors.js';
import { log } from '../common/log.js';
import { DataDir, ensureAdminToken } from './context.js';
import { EventHub } from './api/events.js';
import { handle, type ServerContext } from './api/routes.js';
import { parseMirrors } from './api/fanout-routes.js';
import { bootDecision } from './boot/decide.js';
import { normalizeMac, renderIpxeChain, renderPxelinuxFor } from './boot/ipxe.js';
import { startTftpServer, type TftpServer } from './boot/tftp.js';
import { MulticastSessions, type MulticastConfig } from './multicast/sessions.js';

/** Files the TFTP server makes up: boot.ipxe for this server, pxelinux.cfg/01-MAC per machine. */
function bootFile(ctx: ServerContext, rel: string, address: string): Buffer | undefined {
  if (rel === 'boot.ipxe') return Buffer.from(renderIpxeChain(ctx.publicUrl));
  const m = /^pxelinux\.cfg\/(01(-[0-9a-fA-F]{2}){6})$/.exec(rel);
  if (!m) return undefined;
  const mac = normalizeMac(m[1]);
  const d = bootDecision(ctx.data, mac, { publicUrl: ctx.publicUrl, kernelArgs: ctx.kernelArgs, remoteAddress: address });
  if (d.discovered) ctx.hub.publish('discovered', { mac, address });
  return Buffer.from(renderPxelinuxFor(d));
}

export interface ServerOptions {
  dataDir: string;
  /** "HOST:PORT" (port 0 picks a free one), "[::1]:PORT", or a bare port on 127.0.0.1. */
  listen: string | number;
  /** The address nodes use to reach the server (default: the listening URL). */
  publicUrl?: string;
  /** Where vmlinuz and initrd.img are (default DATA/boot). */
  bootDir?: string;
  /** Kernel arguments added to every install boot (e.g. ferry.shell=1). */
  kernelArgs?: string[];
  /**
   * Also serve TFTP (read-only) from `root`: the iPXE binaries there, plus boot.ipxe
   * rendered for publicUrl and pxelinux.cfg/01-MAC decided like GET /boot/ipxe.
   */
  tftp?: { listen: string; root: string };
  /** Multicast sessions: interface, address and port range (server/multicast/sessions.ts). */
  multicast?: MulticastConfig;
  /** `--mirror URL`: static HTTP mirrors of DATA/blobs that nodes try first. */
  mirrors?: string[];
}

export interface RunningServer {
  url: string;
  port: number;
  publicUrl: string;
  adminToken: string;
  dataDir: string;
  /** Where TFTP listens, when asked for. */
  tftp?: { address: string; port: number };
  close(): Promise<void>;
}

export function parseListen(listen: string | number): { host: string; port: number } {
  if (typeof listen === 'number') return { host: '127.0.0.1', port: listen };
  const m = /^(?:\[([^\]]+)\]|([^:]*)):([0-9]{1,5})$/.exec(listen.trim()) ?? /^()()([0-9]{1,5})$/.exec(listen.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new FerryError('FERRY_E_BAD_LISTEN', `--listen "${listen}" is not HOST:PORT`, { details: { listen }, hint: 'write e.g. 0.0.0.0:8080, 127.0.0.1:0 or [::]:8080' });
  }
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const { host, port } = parseListen(o.listen);
  const data = new DataDir(o.dataDir);
  const adminToken = ensureAdminToken(o.dataDir);
  data.blobs.cleanTemp();
  const hub = new EventHub();
  let multicast: MulticastSessions;
  let mirrors: string[];
  try {
    mirrors = parseMirrors(o.mirrors);
    multicast = new MulticastSessions(data, o.multicast);
    await multicast.checkInterface();
  } catch (e) {
    data.close();
    throw e;
  }
  const ctx: ServerContext = { data, adminToken, publicUrl: '', bootDir: o.bootDir ?? join(o.dataDir, 'boot'), hub, kernelArgs: o.kernelArgs ?? [], multicast, mirrors };
  const server: Server = createServer((req, res) => {
    handle(ctx, req, res).catch((e) => {
      log.error('request handler failed', { error: (e as Error).message });
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  // Slow or idle clients must not pin sockets forever. requestTimeout bounds receiving a
  // request (headers and body), not sending the answer, so long blob downloads are unaffected.
  server.headersTimeout = 30_000;
  server.requestTimeout = 120_000;
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new FerryError('FERRY_E_LISTEN', `cannot listen on ${host}:${port}: ${e.message}`, { details: { host, port, errno: e.code }, hint: e.code === 'EADDRINUSE' ? 'another program uses this port; choose another with --listen' : 'check the address and your permissions' })),
    );
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  const url = `http://${urlHost}:${actualPort}`;
  ctx.publicUrl = (o.publicUrl ?? url).replace(/\/+$/, '');
  writeFileSync(serverInfoFile(o.dataDir), JSON.stringify({ url, publicUrl: ctx.publicUrl, pid: process.pid, startedAt: new Date().toISOString() }, null, 2) + '\n', { mode: 0o600 });
  log.info('server listening', { url, publicUrl: ctx.publicUrl, dataDir: o.dataDir });
  let tftp: TftpServer | undefined;
  if (o.tftp) {
    const t = parseListen(o.tftp.listen);
    try {
      tftp = await startTftpServer({ root: o.tftp.root, host: t.host, port: t.port, virtualFile: (rel, client) => bootFile(ctx, rel, client.address) });
    } catch (e) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      data.close();
      throw e;
    }
  }
  let closed = false;
  return {
    url,
    port: actualPort,
    publicUrl: ctx.publicUrl,
    adminToken,
    dataDir: o.dataDir,
    tftp: tftp ? { address: tftp.address, port: tftp.port } : undefined,
    async close() {
      if (closed) return;
      closed = true;
      await tftp?.close();
      await multicast.close();
      hub.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      rmSync(serverInfoFile(o.dataDir), { force: true });
      data.close();
    },
  };
}
