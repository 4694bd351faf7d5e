/**
 * Fan-out routes (issue 13), mounted as plain handlers (app.ts RESOURCES, `fanout`): the installer joins a
 * layer's multicast session, or asks what the server knows of it. Deploy token only; the body
 * is validated here, where it enters.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { FerryError, ValidationError } from '../../common/errors.js';
import { DIGEST_RE, MULTICAST_ROUTES, type InstallConfig } from '../../common/protocol.js';
import { getDeploymentRow, type DeploymentRow } from '../db/deployments.js';
import type { MulticastSessions } from '../multicast/sessions.js';
import { readJson, sendJson } from './http.js';
import { authOf, deploymentOf } from './auth.js';
import { mountRaw, onlyMethods, type Resource } from './route.js';

export interface FanoutContext {
  multicast: MulticastSessions;
  /** `ferry serve --mirror URL[@CIDR]`, checked by parseMirrors. */
  mirrors?: Mirror[];
  /** false: the server does not seed torrents as a peer; nodes use the web seed (server/torrent/seeder.ts). */
  torrentSeed?: boolean;
  /** The server's seeder's upload cap per layer in bytes per second (`--torrent-seed-rate`; default none). */
  torrentSeedRate?: number;
}

/** A static mirror of DATA/blobs, for every node or only for nodes whose address is in `subnet`. */
export interface Mirror {
  url: string;
  /** `--mirror URL@CIDR`: the subnet as written (network address normalised), e.g. 10.1.0.0/16. */
  subnet?: { cidr: string; family: 'ipv4' | 'ipv6'; net: string; prefix: number };
}

/** `URL@CIDR` → [URL, CIDR]; a URL alone when the text after its last @ is not an address/prefix. */
function splitSubnet(m: string): [string, string | undefined] {
  const at = m.lastIndexOf('@');
  if (at < 0) return [m, undefined];
  const tail = m.slice(at + 1);
  return /^[0-9A-Fa-f:.]+\/[0-9]{1,3}$/.test(tail) ? [m.slice(0, at), tail] : [m, undefined];
}

/**
 * Check `--mirror URL[@CIDR]` values where they enter: absolute http(s) URLs without credentials,
 * an optional IPv4 or IPv6 subnet (address/prefix), every problem at once.
 */
export function parseMirrors(list: string[] | undefined): Mirror[] {
  const out: Mirror[] = [];
  const problems: string[] = [];
  for (const m of list ?? []) {
    const [text, cidr] = splitSubnet(m);
    let u: URL | undefined;
    try {
      u = new URL(text);
    } catch {
      /* reported below */
    }
    if (!u || !/^https?:$/.test(u.protocol) || u.username || u.password || u.search || u.hash) {
      problems.push(`--mirror "${m.slice(0, 200)}" is not an http(s) URL without credentials, query or fragment`);
      continue;
    }
    const url = u.toString().replace(/\/+$/, '');
    if (cidr === undefined) {
      out.push({ url });
      continue;
    }
    const [addr, p] = cidr.split('/');
    const family = isIP(addr) === 4 ? 'ipv4' : isIP(addr) === 6 ? 'ipv6' : undefined;
    const prefix = Number(p);
    if (!family || prefix > (family === 'ipv4' ? 32 : 128)) {
      problems.push(`--mirror "${m.slice(0, 200)}": "${cidr}" is not a subnet (an IPv4 address/0-32 or an IPv6 address/0-128)`);
      continue;
    }
    out.push({ url, subnet: { cidr, family, net: addr, prefix } });
  }
  if (problems.length) throw new FerryError('FERRY_E_BAD_VALUE', problems.join('; '), { details: { problems }, hint: 'give the URL under which a copy of DATA/blobs is served, optionally with the nodes\' subnet, e.g. --mirror http://mirror1/ferry-blobs@10.1.0.0/16' });
  return out;
}

/**
 * The mirrors a node at `address` tries, in order: those of its subnet (as given), then the
 * global ones (as given); mirrors of other subnets are left out. The server itself is always the
 * last resort (the installer adds it); the layer's digest is the only trust either way.
 * An IPv4-mapped IPv6 address (::ffff:A.B.C.D, how a dual-stack socket reports IPv4) counts as IPv4.
 */
export function mirrorsFor(mirrors: Mirror[], address: string | undefined): string[] {
  const a = (address ?? '').replace(/^::ffff:(?=[0-9]+\.)/i, '');
  const fam = isIP(a) === 4 ? 'ipv4' : isIP(a) === 6 ? 'ipv6' : undefined;
  const local = mirrors.filter((m) => {
    if (!m.subnet || !fam || m.subnet.family !== fam) return false;
    const b = new BlockList();
    b.addSubnet(m.subnet.net, m.subnet.prefix, m.subnet.family);
    return b.check(a, fam);
  });
  return [...local, ...mirrors.filter((m) => !m.subnet)].map((m) => m.url);
}

/** The install configuration with the mirror list the node at `address` is to try before the server. */
export function withMirrors(cfg: InstallConfig, ctx: FanoutContext, address: string | undefined): InstallConfig {
  const list = mirrorsFor(ctx.mirrors ?? [], address);
  return list.length ? { ...cfg, transport: { ...cfg.transport, mirrors: list } } : cfg;
}

function layerOf(v: unknown, path: string): string {
  if (typeof v !== 'string' || !DIGEST_RE.test(v)) {
    throw new ValidationError('FERRY_E_BAD_REQUEST', 'the multicast request', [{ severity: 'error', code: 'FERRY_E_BAD_REQUEST', path, message: 'must be a layer digest (sha256:<64 hex>)' }]);
  }
  return v;
}

/** Handles the request and returns true when `path` is a fan-out route; false leaves it to the caller. */
export async function handleFanout(ctx: FanoutContext, req: IncomingMessage, res: ServerResponse, url: URL, method: string, deployRow: () => DeploymentRow): Promise<boolean> {
  const path = url.pathname;
  if (path === MULTICAST_ROUTES.join) {
    if (method !== 'POST') throw new FerryError('FERRY_E_METHOD_NOT_ALLOWED', 'method not allowed here; use POST', { details: { allowed: ['POST'] }, hint: 'use POST' });
    const row = deployRow();
    const body = await readJson(req);
    const b = (body && typeof body === 'object' && !Array.isArray(body) ? body : {}) as Record<string, unknown>;
    const extra = Object.keys(b).filter((k) => k !== 'layer');
    if (extra.length) throw new ValidationError('FERRY_E_BAD_REQUEST', 'the multicast request', extra.map((k) => ({ severity: 'error' as const, code: 'FERRY_E_BAD_REQUEST', path: `$.${k}`, message: 'is not a known field' })));
    sendJson(res, 200, await ctx.multicast.join(row, layerOf(b.layer, '$.layer'), req.socket.remoteAddress));
    return true;
  }
  if (path === MULTICAST_ROUTES.session) {
    if (method !== 'GET') throw new FerryError('FERRY_E_METHOD_NOT_ALLOWED', 'method not allowed here; use GET', { details: { allowed: ['GET'] }, hint: 'use GET' });
    const row = deployRow();
    const state = ctx.multicast.state(row, layerOf(url.searchParams.get('layer') ?? undefined, 'layer'));
    if (!state) throw new FerryError('FERRY_E_NOT_FOUND', 'no multicast session for this layer and batch', { hint: 'a session exists once a receiver joined it' });
    sendJson(res, 200, state);
    return true;
  }
  return false;
}

/** The routes as a fastify resource: plain handlers behind the deploy-token hook. */
export const fanout: Resource = (app, ctx) => {
  // The session's state is also the operator's (admin token, ?deployment=ID): a deploy token
  // dies with its deployment, so after the installs only the admin can still ask.
  for (const [url, method, auth] of [[MULTICAST_ROUTES.join, 'POST', 'deploy'], [MULTICAST_ROUTES.session, 'GET', 'any']] as const) {
    mountRaw(app, ctx, { method, url, auth }, async (c, req, res) => {
      const u = new URL(req.url ?? '/', 'http://ferry.invalid');
      const rowOf = (): DeploymentRow => {
        if (authOf(req).kind === 'deploy') return deploymentOf(req);
        const id = Number(u.searchParams.get('deployment'));
        if (Number.isInteger(id) && id > 0) return getDeploymentRow(c.data, id);
        throw new ValidationError('FERRY_E_BAD_REQUEST', 'the multicast request', [{ severity: 'error', code: 'FERRY_E_BAD_REQUEST', path: 'deployment', message: 'with the admin token, name the deployment: ?deployment=ID' }]);
      };
      const handled = await handleFanout(c, req, res, u, req.method ?? 'GET', rowOf);
      if (!handled) throw new FerryError('FERRY_E_NOT_FOUND', `nothing at ${url}`, { hint: 'see docs/operator-guide.md for the server\'s routes' });
    });
    onlyMethods(app, url, [method], auth);
  }
};
