/**
 * Tokens, checked in one place for every /api and /blobs request (app.ts runs `authorize`
 * as the first hook of every request, before its body is read):
 *  - `admin`: the admin token only (the admin API, the event stream);
 *  - `deploy`: a deployment's token only (the installer API);
 *  - `blob`: either; a deploy token reads only the blobs of its deployment's image;
 *  - `medium`: a restore medium's token only (posting that medium's install records);
 *  - `discovery`: a discovery token only (a discovery boot posting its machine's inventory);
 *  - `none`: network boot (firmware cannot send a token).
 * A route names its kind in its config (`config: { auth }`); a request that matches no route
 * is held to the kind of its prefix, so an unknown /api URL still needs the admin token.
 * The web console's session cookie (server/ui/sessions.ts) stands for the admin token on
 * admin routes, and a state-changing request with it must also carry its CSRF header.
 */
import type { IncomingMessage } from 'node:http';
import { API_PREFIX, BLOB_PREFIX, DIGEST_RE, INSTALL_ROUTES } from '../../common/protocol.js';
import { FerryError } from '../../common/errors.js';
import { sameSecret } from '../context.js';
import { deploymentUsesBlob, type DeploymentRow } from '../db/deployments.js';
import { checkDeployToken } from '../db/deployment-lifecycle.js';
import { checkMediumToken, isMediumToken, type MediumRow } from '../db/media.js';
import { checkDiscoveryToken, isDiscoveryToken } from '../db/discovery.js';
import { bearer, httpError } from './http.js';
import type { ServerContext } from './route.js';
import { CSRF_HEADER, sessionCookie, STATE_CHANGING } from '../ui/sessions.js';

/** any: the admin token or a deploy token (a route that answers both, e.g. a multicast session's state). */
export type AuthKind = 'admin' | 'deploy' | 'blob' | 'any' | 'medium' | 'discovery' | 'none';
export type Auth = { kind: 'admin' } | { kind: 'deploy'; row: DeploymentRow } | { kind: 'medium'; medium: MediumRow } | { kind: 'discovery'; token: string; mac: string } | { kind: 'none' };

const INSTALL = new Set<string>(Object.values(INSTALL_ROUTES));

/** The kind of a URL that matched no route. */
export function authOfPath(path: string): AuthKind {
  if (path.startsWith(BLOB_PREFIX)) return 'blob';
  if (INSTALL.has(path)) return 'deploy';
  if (path.startsWith(API_PREFIX + '/')) return 'admin';
  return 'none';
}

/** The admin grant of a console session cookie, or undefined when the request has none. */
function sessionAuth(ctx: ServerContext, req: IncomingMessage): Auth | undefined {
  const id = sessionCookie(req);
  if (id === undefined || !ctx.sessions) return undefined;
  const l = ctx.sessions.lookup(id);
  if (!l.ok) throw httpError(l.why === 'expired' ? 'FERRY_E_SESSION_EXPIRED' : 'FERRY_E_SESSION_INVALID', l.why === 'expired' ? 'the console session has expired' : 'the console session is not known (the server restarted or it was logged out)', 'log in again at /ui/ with the admin token');
  if (STATE_CHANGING.has(req.method ?? '') && !ctx.sessions.csrfOk(l.session, req.headers[CSRF_HEADER])) {
    throw httpError('FERRY_E_CSRF', `a state-changing request with the console session needs its ${CSRF_HEADER} header`, 'send the CSRF token the console got at login (GET /ui/session) in the ' + CSRF_HEADER + ' header');
  }
  return { kind: 'admin' };
}

function authenticate(ctx: ServerContext, req: IncomingMessage, kind: AuthKind): Auth {
  const t = bearer(req);
  if (t === undefined && kind === 'admin') {
    const s = sessionAuth(ctx, req);
    if (s) return s;
  }
  if (t === undefined) throw httpError('FERRY_E_TOKEN_MISSING', 'this request needs a token (Authorization: Bearer TOKEN)', 'send the admin token (DATA/admin.token) or the deployment\'s token');
  if (t && sameSecret(t, ctx.adminToken)) return { kind: 'admin' };
  if (isDiscoveryToken(t)) throw httpError('FERRY_E_FORBIDDEN', 'a discovery token only posts its own machine\'s inventory', 'a discovery boot gets nothing else: enlist the machine (ferry node enlist MAC) and deploy it');
  const c = checkDeployToken(ctx.data, t);
  if (!c.ok) throw httpError(c.code, c.message, c.hint);
  return { kind: 'deploy', row: c.row };
}

/** A blob's digest, from the URL: refused before the token is looked at, as it names no file. */
export function blobDigest(path: string): string {
  const digest = path.slice(BLOB_PREFIX.length);
  if (!DIGEST_RE.test(digest)) {
    throw new FerryError('FERRY_E_BAD_DIGEST', `"${digest.slice(0, 100)}" is not a blob digest (sha256:<64 hex>)`, { details: { digest: digest.slice(0, 100) }, hint: 'blobs are named sha256:<64 lowercase hex digits>' });
  }
  return digest;
}

/** Check the request's token against what its route needs; throws the refusal. */
export function authorize(ctx: ServerContext, req: IncomingMessage, kind: AuthKind, path: string): Auth {
  if (kind === 'none') return { kind: 'none' };
  if (kind === 'medium') {
    // A medium's token opens this one route and no other (every other kind refuses it below).
    const t = bearer(req);
    if (t === undefined) throw httpError('FERRY_E_TOKEN_MISSING', 'posting an install record needs the medium\'s token (Authorization: Bearer TOKEN)', 'the installed system\'s ferry-report-install sends the token its medium carried');
    if (!isMediumToken(t)) throw httpError('FERRY_E_FORBIDDEN', 'install records are posted with a medium\'s token only', 'use the token of the medium (ferry media build --server URL mints it)');
    const c = checkMediumToken(ctx.data, t);
    if (!c.ok) throw httpError(c.code, c.message, c.hint);
    return { kind: 'medium', medium: c.medium };
  }
  if (kind === 'discovery') {
    const t = bearer(req);
    if (t === undefined) throw httpError('FERRY_E_TOKEN_MISSING', 'posting a discovery report needs the discovery token (Authorization: Bearer TOKEN)', 'the discovery boot sends the ferry.token its boot script gave');
    if (!isDiscoveryToken(t)) throw httpError('FERRY_E_FORBIDDEN', 'discovery reports are posted with a discovery token only', 'a deployed node reports its inventory to ' + INSTALL_ROUTES.inventory);
    const c = checkDiscoveryToken(ctx.data, t);
    if (!c.ok) throw httpError(c.code, c.message, c.hint);
    return { kind: 'discovery', token: t, mac: c.mac };
  }
  if (kind === 'blob') {
    const digest = blobDigest(path);
    const a = authenticate(ctx, req, kind);
    if (a.kind === 'deploy' && !deploymentUsesBlob(a.row, digest)) {
      throw httpError('FERRY_E_FORBIDDEN', `deployment ${a.row.id}'s image does not use blob ${digest}`, 'a deploy token reads only the layers of its own deployment');
    }
    return a;
  }
  const a = authenticate(ctx, req, kind);
  if (kind === 'any') return a;
  if (kind === 'admin' && a.kind !== 'admin') throw httpError('FERRY_E_FORBIDDEN', 'a deploy token cannot use the admin API', 'use the admin token (DATA/admin.token)');
  if (kind === 'deploy' && a.kind !== 'deploy') throw httpError('FERRY_E_FORBIDDEN', 'the installer API needs a deploy token, not the admin token', 'use the token of a deployment (ferry deploy NODE prints it)');
  return a;
}

const granted = new WeakMap<IncomingMessage, Auth>();

export function grant(req: IncomingMessage, a: Auth): void {
  granted.set(req, a);
}

/** What the token hook granted this request (for fastify routes and plain handlers alike). */
export function authOf(req: IncomingMessage): Auth {
  return granted.get(req) ?? { kind: 'none' };
}

/** The medium of a request the hook let in with a medium token. */
export function mediumOf(req: IncomingMessage): MediumRow {
  const a = authOf(req);
  if (a.kind !== 'medium') throw new FerryError('FERRY_E_INTERNAL', 'a medium-token route ran without a medium token');
  return a.medium;
}

/** The discovery token (and its MAC) of a request the hook let in with one. */
export function discoveryOf(req: IncomingMessage): { token: string; mac: string } {
  const a = authOf(req);
  if (a.kind !== 'discovery') throw new FerryError('FERRY_E_INTERNAL', 'a discovery route ran without a discovery token');
  return a;
}

/** The deployment of a request the hook let in with a deploy token. */
export function deploymentOf(req: IncomingMessage): DeploymentRow {
  const a = authOf(req);
  if (a.kind !== 'deploy') throw new FerryError('FERRY_E_INTERNAL', 'a deploy-token route ran without a deploy token');
  return a.row;
}
