/**
 * The image server: `startServer` is what `ferry serve` runs and what tests start on
 * a loopback port.
 */
import { limitConnectionsPerClient } from './api/conn-limit.js';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serverInfoFile } from '../common/cli.js';
import { FerryError } from '../common/errors.js';
import { log } from '../common/log.js';
import { DataDir, ensureAdminToken } from './context.js';
import { DEFAULT_LOST_AFTER_MS, markLost } from './db/deployment-lifecycle.js';
import { lockDataDir } from './lock.js';
import { EventHub } from './api/events.js';
import { SessionStore, type SessionLimits } from './ui/sessions.js';
import { buildApp, routesOf, type RouteInfo, type ServerContext } from './api/app.js';
import { parseMirrors, type Mirror } from './api/fanout-routes.js';
import { bootDecision, type DiscoverOptions } from './boot/decide.js';
import { normalizeMac, renderIpxeChain, renderPxelinuxFor } from './boot/ipxe.js';
import { startTftpServer, type TftpServer } from './boot/tftp.js';
import { createServerLogger, deploymentChangeLogger, forwardCommonLog, logBoot, type ServerLogOptions } from './log.js';
import { checkPublicUrl } from './public-url.js';
import { watchDeployments, watchPower } from './watch.js';
import { MulticastSessions, type MulticastConfig } from './multicast/sessions.js';
import { closeTorrents } from './api/torrent-routes.js';

/** Files the TFTP server makes up: boot.ipxe for this server, pxelinux.cfg/01-MAC per machine. */
function bootFile(ctx: ServerContext, rel: string, address: string): Buffer | undefined {
  if (rel === 'boot.ipxe') return Buffer.from(renderIpxeChain(ctx.publicUrl));
  const m = /^pxelinux\.cfg\/(01(-[0-9a-fA-F]{2}){6})$/.exec(rel);
  if (!m) return undefined;
  const mac = normalizeMac(m[1]);
  const d = bootDecision(ctx.data, mac, { publicUrl: ctx.publicUrl, kernelArgs: ctx.kernelArgs, discover: ctx.discover, remoteAddress: address });
  if (d.discovered) ctx.hub.publish('discovered', { mac, address });
  logBoot(ctx.logger, 'pxelinux', d, address);
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
  /** `--discover`: unknown MACs boot the inventory mode, then power off or wait (server/boot/decide.ts). */
  discover?: DiscoverOptions;
  /**
   * Also serve TFTP (read-only) from `root`: the iPXE binaries there, plus boot.ipxe
   * rendered for publicUrl and pxelinux.cfg/01-MAC decided like GET /boot/ipxe.
   */
  tftp?: { listen: string; root: string };
  /** A running deployment with no word from its installer this long becomes `lost` (default 5 min). */
  lostAfterMs?: number;
  /** Multicast sessions: interface, address and port range (server/multicast/sessions.ts). */
  multicast?: MulticastConfig;
  /** `--mirror URL[@CIDR]`: static HTTP mirrors of DATA/blobs that nodes (of that subnet) try first. */
  mirrors?: string[];
  /** The web console's session limits (`--session-idle`, `--session-max-age`; server/ui/sessions.ts). */
  sessions?: SessionLimits;
  /** The server's log (`ferry serve --log-format/--log-level`, server/log.ts); none when absent. */
  log?: ServerLogOptions;
  /** Seed torrents as a BitTorrent peer instead of listing the web seed (default true; server/torrent/seeder.ts). */
  torrentSeed?: boolean;
  /** The seeder's upload cap per layer in bytes per second (`ferry serve --torrent-seed-rate`); default none. */
  torrentSeedRate?: number;
}

export interface RunningServer {
  url: string;
  port: number;
  publicUrl: string;
  adminToken: string;
  dataDir: string;
  /** Where TFTP listens, when asked for. */
  tftp?: { address: string; port: number };
  /** Every HTTP route registered (method, URL pattern, token kind). */
  routes: RouteInfo[];
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
  if (o.publicUrl !== undefined) checkPublicUrl(o.publicUrl);
  const data = new DataDir(o.dataDir);
  // Before anything is written or cleaned (the blob store's temp files may be another server's).
  const lock = await lockDataDir(o.dataDir).catch((e) => {
    data.close();
    throw e;
  });
  const adminToken = ensureAdminToken(o.dataDir);
  data.blobs.cleanTemp();
  const hub = new EventHub();
  let multicast: MulticastSessions;
  let mirrors: Mirror[];
  try {
    mirrors = parseMirrors(o.mirrors);
    multicast = new MulticastSessions(data, o.multicast);
    await multicast.checkInterface();
  } catch (e) {
    await lock.release();
    data.close();
    throw e;
  }
  const logger = o.log ? createServerLogger(o.log) : undefined;
  const ctx: ServerContext = { data, adminToken, publicUrl: '', bootDir: o.bootDir ?? join(o.dataDir, 'boot'), hub, kernelArgs: o.kernelArgs ?? [], discover: o.discover, multicast, mirrors, torrentSeed: o.torrentSeed, torrentSeedRate: o.torrentSeedRate, sessions: new SessionStore(o.sessions), logger };
  if (logger) hub.tap = deploymentChangeLogger(logger);
  const app = await buildApp(ctx);
  limitConnectionsPerClient(app.server);
  try {
    await app.listen({ port, host });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    await app.close().catch(() => undefined);
    await multicast.close();
    await lock.release();
    data.close();
    throw new FerryError('FERRY_E_LISTEN', `cannot listen on ${host}:${port}: ${e.message}`, { details: { host, port, errno: e.code }, hint: e.code === 'EADDRINUSE' ? 'another program uses this port; choose another with --listen' : 'check the address and your permissions' });
  }
  const server = app.server;
  const addr = server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  const url = `http://${urlHost}:${actualPort}`;
  ctx.publicUrl = (o.publicUrl ?? url).replace(/\/+$/, '');
  writeFileSync(serverInfoFile(o.dataDir), JSON.stringify({ url, publicUrl: ctx.publicUrl, pid: process.pid, startedAt: new Date().toISOString() }, null, 2) + '\n', { mode: 0o600 });
  const unforward = logger ? forwardCommonLog(logger) : () => undefined;
  log.info('server listening', { url, publicUrl: ctx.publicUrl, dataDir: o.dataDir });
  let tftp: TftpServer | undefined;
  if (o.tftp) {
    const t = parseListen(o.tftp.listen);
    try {
      tftp = await startTftpServer({ root: o.tftp.root, host: t.host, port: t.port, virtualFile: (rel, client) => bootFile(ctx, rel, client.address) });
    } catch (e) {
      unforward();
      await app.close();
      await multicast.close();
      rmSync(serverInfoFile(o.dataDir), { force: true });
      await lock.release();
      data.close();
      throw e;
    }
  }
  // Lost installs: checked a few times per lost-after period (at most every 30 s), so one is
  // marked within 1.25 × the setting. A timer, not a computation on read, because the CLI reads
  // the database without the server and the monitor needs a change it can be told about.
  const lostAfterMs = o.lostAfterMs ?? DEFAULT_LOST_AFTER_MS;
  const lostTimer = setInterval(() => {
    try {
      for (const info of markLost(data, lostAfterMs)) {
        log.info('deployment lost', { deployment: info.id, node: info.node, lostAfterSeconds: lostAfterMs / 1000 });
        hub.publish('deployment', info);
      }
    } catch (e) {
      log.error('checking for lost deployments failed', { error: (e as Error).message });
    }
  }, Math.max(100, Math.min(30_000, Math.round(lostAfterMs / 4))));
  lostTimer.unref();
  const unwatchDeployments = watchDeployments(data, (info) => hub.publish('deployment', info));
  const unwatchPower = watchPower(data, (e) => {
    log.info('power action', { node: e.node, action: e.action, actor: e.actor, driver: e.driver, ok: e.ok, state: e.state, error: e.error });
    hub.publish('power', e);
  });
  const unwatch = () => {
    unwatchDeployments();
    unwatchPower();
  };
  let closed = false;
  return {
    url,
    port: actualPort,
    publicUrl: ctx.publicUrl,
    adminToken,
    dataDir: o.dataDir,
    tftp: tftp ? { address: tftp.address, port: tftp.port } : undefined,
    routes: routesOf(app),
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(lostTimer);
      unwatch();
      await tftp?.close();
      await multicast.close();
      await closeTorrents(data);
      hub.close();
      // forceCloseConnections: keep-alive sockets and blob downloads in flight end here too.
      await app.close();
      rmSync(serverInfoFile(o.dataDir), { force: true });
      unforward();
      data.close();
      await lock.release();
    },
  };
}
