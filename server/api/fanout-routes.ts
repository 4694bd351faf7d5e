/**
 * Fan-out routes (issue 13), mounted as plain handlers (app.ts RESOURCES, `fanout`): the installer joins a
 * layer's multicast session, or asks what the server knows of it. Deploy token only; the body
 * is validated here, where it enters.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FerryError, ValidationError } from '../../common/errors.js';
import { DIGEST_RE, MULTICAST_ROUTES, type InstallConfig } from '../../common/protocol.js';
import { getDeploymentRow, type DeploymentRow } from '../db/deployments.js';
import type { MulticastSessions } from '../multicast/sessions.js';
import { readJson, sendJson } from './http.js';
import { authOf, deploymentOf } from './auth.js';
import { mountRaw, onlyMethods, type Resource } from './route.js';

export interface FanoutContext {
  multicast: MulticastSessions;
  /** `ferry serve --mirror URL`, checked by parseMirrors. */
  mirrors?: string[];
  /** false: the server does not seed torrents as a peer; nodes use the web seed (server/torrent/seeder.ts). */
  torrentSeed?: boolean;
  /** The server's seeder's upload cap per layer in bytes per second (`--torrent-seed-rate`; default none). */
  torrentSeedRate?: number;
}

/** Check `--mirror URL` values where they enter: absolute http(s) URLs without credentials, every problem at once. */
export function parseMirrors(list: string[] | undefined): string[] {
  const out: string[] = [];
  const problems: string[] = [];
  for (const m of list ?? []) {
    let u: URL | undefined;
    try {
      u = new URL(m);
    } catch {
      /* reported below */
    }
    if (!u || !/^https?:$/.test(u.protocol) || u.username || u.password || u.search || u.hash) problems.push(`--mirror "${m.slice(0, 200)}" is not an http(s) URL without credentials, query or fragment`);
    else out.push(u.toString().replace(/\/+$/, ''));
  }
  if (problems.length) throw new FerryError('FERRY_E_BAD_VALUE', problems.join('; '), { details: { problems }, hint: 'give the URL under which a copy of DATA/blobs is served, e.g. --mirror http://mirror1/ferry-blobs' });
  return out;
}

/** The install configuration with the mirror list the node is to try before the server. */
export function withMirrors(cfg: InstallConfig, ctx: FanoutContext): InstallConfig {
  return ctx.mirrors?.length ? { ...cfg, transport: { ...cfg.transport, mirrors: ctx.mirrors } } : cfg;
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
