/**
 * The server's routes. Tokens are checked on every /api and /blobs request; names in
 * URLs are validated (a name with "/", ".." or anything outside [A-Za-z0-9._-] is
 * refused), and the only files ever served are blobs named by a validated digest and
 * the two fixed boot files.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FerryError, ValidationError, type Problem } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { ADMIN_ROUTES, API_PREFIX, BLOB_PREFIX, BOOT_ROUTES, DIGEST_RE, INSTALL_ROUTES, type ArmRequest, type ArmResponse } from '../../common/protocol.js';
import { sameSecret, type DataDir } from '../context.js';
import {
  armDeployment,
  checkDeployToken,
  deploymentEvents,
  deploymentInfo,
  deploymentUsesBlob,
  getDeploymentRow,
  installConfig,
  listDeployments,
  parseTtl,
  recordEvents,
  recordResult,
  redeploy,
  validateEvents,
  validateResult,
  type DeploymentRow,
} from '../db/deployments.js';
import {
  addNode,
  addToGroup,
  getNode,
  groupInfo,
  listDiscovered,
  listGroups,
  listNodes,
  normaliseMac,
  removeFromGroup,
  removeNode,
  selectNodes,
  setNode,
  type NodeChanges,
} from '../db/inventory.js';
import { listAudit } from '../db/audit.js';
import { renderIpxeFor } from '../boot/ipxe.js';
import { bootDecision } from '../boot/decide.js';
import { cloneImage, garbageCollect, getImage, imageInfo, listImages, NAME_RE, removeImage, setCustomizations, validateCustomizations, verifyImages } from '../store/images.js';
import { EventHub } from './events.js';
import { serveFile } from './files.js';
import { bearer, httpError, readJson, sendError, sendJson } from './http.js';
import { monitorSnapshot } from '../monitor.js';
import { handleFanout, withMirrors, type FanoutContext } from './fanout-routes.js';

export interface ServerContext extends FanoutContext {
  data: DataDir;
  adminToken: string;
  publicUrl: string;
  bootDir: string;
  hub: EventHub;
  /** Extra kernel arguments for every install boot (e.g. ferry.shell=1 in tests). */
  kernelArgs: string[];
}

type Auth = { kind: 'admin' } | { kind: 'deploy'; row: DeploymentRow };

function authenticate(ctx: ServerContext, req: IncomingMessage): Auth {
  const t = bearer(req);
  if (t === undefined) throw httpError('FERRY_E_TOKEN_MISSING', 'this request needs a token (Authorization: Bearer TOKEN)', 'send the admin token (DATA/admin.token) or the deployment\'s token');
  if (t && sameSecret(t, ctx.adminToken)) return { kind: 'admin' };
  const c = checkDeployToken(ctx.data, t);
  if (!c.ok) throw httpError(c.code, c.message, c.code === 'FERRY_E_TOKEN_EXPIRED' ? 'arm the node again (ferry deploy NODE) for a fresh token' : 'use the token from the kernel command line (ferry.token=) or DATA/admin.token');
  return { kind: 'deploy', row: c.row };
}

function requireAdmin(ctx: ServerContext, req: IncomingMessage): void {
  const a = authenticate(ctx, req);
  if (a.kind !== 'admin') throw httpError('FERRY_E_FORBIDDEN', 'a deploy token cannot use the admin API', 'use the admin token (DATA/admin.token)');
}

function requireDeploy(ctx: ServerContext, req: IncomingMessage): DeploymentRow {
  const a = authenticate(ctx, req);
  if (a.kind !== 'deploy') throw httpError('FERRY_E_FORBIDDEN', 'the installer API needs a deploy token, not the admin token', 'use the token of a deployment (ferry deploy NODE prints it)');
  return a.row;
}

function methodNotAllowed(allowed: string[]): FerryError {
  return new FerryError('FERRY_E_METHOD_NOT_ALLOWED', `method not allowed here; use ${allowed.join(' or ')}`, { details: { allowed }, hint: `use ${allowed.join(' or ')}` });
}

function notFound(path: string): FerryError {
  return new FerryError('FERRY_E_NOT_FOUND', `nothing at ${path.slice(0, 200)}`, { details: { path: path.slice(0, 200) }, hint: 'see docs/operator-guide.md for the server\'s routes' });
}

/** A name taken from a URL: decoded once, then held to the same rule as on the command line. */
function urlName(raw: string, kind: string): string {
  let s: string;
  try {
    s = decodeURIComponent(raw);
  } catch {
    s = raw;
  }
  const plain = s.replace(/@[0-9]+$/, '');
  if (!NAME_RE.test(plain)) {
    throw new FerryError('FERRY_E_BAD_NAME', `${kind} name ${JSON.stringify(s.slice(0, 200))} in the URL is not allowed`, {
      details: { kind, name: s.slice(0, 200) },
      hint: 'names hold only letters, digits, ".", "_" and "-" (no "/" or "..")',
    });
  }
  return s;
}

function problems(what: string, list: Problem[]): void {
  if (list.length) throw new ValidationError('FERRY_E_BAD_REQUEST', what, list);
}

function bad(path: string, message: string): Problem {
  return { severity: 'error', code: 'FERRY_E_BAD_REQUEST', path, message };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

function stringRecord(v: unknown, path: string, out: Problem[]): Record<string, string> | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v)) {
    out.push(bad(path, 'must be an object of strings'));
    return undefined;
  }
  for (const [k, x] of Object.entries(v)) {
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(k)) out.push(bad(`${path}.${k}`, 'key may hold only letters, digits, "_", "." and "-"'));
    if (typeof x !== 'string') out.push(bad(`${path}.${k}`, 'must be a string'));
  }
  return v as Record<string, string>;
}

function stringList(v: unknown, path: string, out: Problem[]): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    out.push(bad(path, 'must be an array of strings'));
    return undefined;
  }
  return v as string[];
}

function validateArm(body: unknown): ArmRequest & { inputs?: Record<string, string>; ttl?: string } {
  const p: Problem[] = [];
  if (!isObject(body)) problems('the deployment request', [bad('$', 'must be an object {"node": NAME, "image"?: IMG, "layout"?: XML}')]);
  const b = body as Record<string, unknown>;
  if (typeof b.node !== 'string' || !NAME_RE.test(b.node)) p.push(bad('$.node', 'must be a node name'));
  if (b.image !== undefined && (typeof b.image !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(@[0-9]+)?$/.test(b.image))) p.push(bad('$.image', 'must be an image name, optionally NAME@VERSION'));
  if (b.layout !== undefined && (typeof b.layout !== 'string' || b.layout.length === 0)) p.push(bad('$.layout', 'must be the layout XML or a stored layout digest'));
  if (b.ttl !== undefined && (typeof b.ttl !== 'string' || !/^[0-9]+[smhd]?$/.test(b.ttl))) p.push(bad('$.ttl', 'must be a duration such as "6h"'));
  stringRecord(b.inputs, '$.inputs', p);
  for (const k of Object.keys(b)) if (!['node', 'image', 'layout', 'inputs', 'ttl'].includes(k)) p.push(bad(`$.${k}`, 'is not a known field'));
  problems('the deployment request', p);
  return b as any;
}

function validateNodeBody(body: unknown, creating: boolean): NodeChanges & { name?: string } {
  const p: Problem[] = [];
  if (!isObject(body)) problems('the node', [bad('$', 'must be an object')]);
  const b = body as Record<string, unknown>;
  const known = ['name', 'macs', 'addMacs', 'removeMacs', 'image', 'layout', 'inputs', 'unsetInputs', 'properties', 'unsetProperties', 'groups', 'removeGroups', 'bootloader', 'finish', 'diskMap', 'bootAction'];
  for (const k of Object.keys(b)) if (!known.includes(k)) p.push(bad(`$.${k}`, 'is not a known field'));
  if (creating && (typeof b.name !== 'string' || !NAME_RE.test(b.name))) p.push(bad('$.name', 'must be a node name'));
  const macs = stringList(b.macs, '$.macs', p);
  macs?.forEach((m, i) => normaliseMac(m) || p.push(bad(`$.macs[${i}]`, `"${m}" is not a MAC address`)));
  if (creating && !macs?.length) p.push(bad('$.macs', 'needs at least one MAC address'));
  for (const k of ['addMacs', 'removeMacs'] as const) stringList(b[k], `$.${k}`, p)?.forEach((m, i) => normaliseMac(m) || p.push(bad(`$.${k}[${i}]`, `"${m}" is not a MAC address`)));
  if (b.image !== undefined && b.image !== null && typeof b.image !== 'string') p.push(bad('$.image', 'must be an image name or null'));
  if (b.layout !== undefined && typeof b.layout !== 'string') p.push(bad('$.layout', 'must be the layout XML'));
  for (const k of ['bootloader', 'finish', 'bootAction'] as const) if (b[k] !== undefined && typeof b[k] !== 'string') p.push(bad(`$.${k}`, 'must be a string'));
  const inputs = stringRecord(b.inputs, '$.inputs', p);
  const properties = stringRecord(b.properties, '$.properties', p);
  const diskMap = b.diskMap === null ? null : stringRecord(b.diskMap, '$.diskMap', p);
  const lists = Object.fromEntries(['unsetInputs', 'unsetProperties', 'groups', 'removeGroups'].map((k) => [k, stringList(b[k], `$.${k}`, p)]));
  problems('the node', p);
  return {
    name: b.name as string | undefined,
    macs,
    addMacs: b.addMacs as string[] | undefined,
    removeMacs: b.removeMacs as string[] | undefined,
    image: b.image as string | null | undefined,
    layoutXml: b.layout as string | undefined,
    layoutSource: b.layout !== undefined ? 'api' : undefined,
    inputs,
    properties,
    diskMap,
    bootloader: b.bootloader as string | undefined,
    finish: b.finish as string | undefined,
    bootAction: b.bootAction as any,
    ...lists,
  };
}

const ADMIN = `${API_PREFIX}/admin/`;

export async function handle(ctx: ServerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x');
  const path = url.pathname;
  const method = req.method ?? 'GET';
  try {
    // -------------------------------------------------- blobs
    if (path.startsWith(BLOB_PREFIX)) {
      if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed(['GET', 'HEAD']);
      const digest = path.slice(BLOB_PREFIX.length);
      if (!DIGEST_RE.test(digest)) {
        throw new FerryError('FERRY_E_BAD_DIGEST', `"${digest.slice(0, 100)}" is not a blob digest (sha256:<64 hex>)`, { details: { digest: digest.slice(0, 100) }, hint: 'blobs are named sha256:<64 lowercase hex digits>' });
      }
      const auth = authenticate(ctx, req);
      if (auth.kind === 'deploy' && !deploymentUsesBlob(auth.row, digest)) {
        throw httpError('FERRY_E_FORBIDDEN', `deployment ${auth.row.id}'s image does not use blob ${digest}`, 'a deploy token reads only the layers of its own deployment');
      }
      const file = ctx.data.blobs.path(digest);
      if (!existsSync(file)) throw httpError('FERRY_E_BLOB_MISSING', `blob ${digest} is not in the store`, 'run `ferry image verify` on the server');
      await serveFile(req, res, file, { etag: `"${digest}"`, contentType: 'application/octet-stream', immutable: true });
      return;
    }
    // -------------------------------------------------- network boot (no token: firmware cannot send one)
    if (path === BOOT_ROUTES.ipxe) {
      if (method !== 'GET') throw methodNotAllowed(['GET']);
      return bootScript(ctx, req, res, url);
    }
    if (path === BOOT_ROUTES.kernel || path === BOOT_ROUTES.initrd) {
      if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed(['GET', 'HEAD']);
      const file = join(ctx.bootDir, path === BOOT_ROUTES.kernel ? 'vmlinuz' : 'initrd.img');
      if (!existsSync(file)) throw httpError('FERRY_E_BOOT_FILE_MISSING', `the boot file ${file} does not exist`, 'build the boot environment (make initrd) or start the server with --boot-dir DIR');
      const st = statSync(file);
      await serveFile(req, res, file, { etag: `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`, contentType: 'application/octet-stream' });
      return;
    }
    // -------------------------------------------------- installer API
    if (path === INSTALL_ROUTES.config) {
      if (method !== 'GET') throw methodNotAllowed(['GET']);
      const row = requireDeploy(ctx, req);
      const cfg = withMirrors(installConfig(ctx.data, row, ctx.publicUrl), ctx);
      ctx.hub.publish('deployment', deploymentInfo(getDeploymentRow(ctx.data, row.id)));
      return sendJson(res, 200, cfg);
    }
    if (path === INSTALL_ROUTES.events) {
      if (method !== 'POST') throw methodNotAllowed(['POST']);
      const row = requireDeploy(ctx, req);
      const events = validateEvents(await readJson(req));
      const stored = recordEvents(ctx.data, row, events);
      for (const e of stored) ctx.hub.publish('progress', { deployment: row.id, node: row.node_name, event: e });
      return sendJson(res, 200, { ok: true, stored: stored.length });
    }
    if (path === INSTALL_ROUTES.result) {
      if (method !== 'POST') throw methodNotAllowed(['POST']);
      const row = requireDeploy(ctx, req);
      const result = validateResult(await readJson(req));
      const info = recordResult(ctx.data, row, result);
      ctx.hub.publish('deployment', info);
      return sendJson(res, 200, { ok: true });
    }
    // -------------------------------------------------- fan-out (server/api/fanout-routes.ts)
    if (await handleFanout(ctx, req, res, url, method, () => requireDeploy(ctx, req))) return;
    // -------------------------------------------------- admin API
    if (path.startsWith(ADMIN) || path.startsWith(API_PREFIX + '/')) {
      requireAdmin(ctx, req);
      return await admin(ctx, req, res, url, method);
    }
    throw notFound(path);
  } catch (e) {
    if (!(e instanceof FerryError) || (e.code === 'FERRY_E_INTERNAL')) log.error('request failed', { method, path, error: (e as Error).message });
    sendError(res, e);
  }
}

function bootScript(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, url: URL): void {
  const raw = url.searchParams.get('mac') ?? '';
  const mac = normaliseMac(raw);
  if (!mac) {
    throw new ValidationError('FERRY_E_BAD_REQUEST', 'the boot request', [bad('mac', `"${raw.slice(0, 64)}" is not a MAC address (GET /boot/ipxe?mac=aa:bb:cc:dd:ee:ff)`)]);
  }
  const decision = bootDecision(ctx.data, mac, { publicUrl: ctx.publicUrl, kernelArgs: ctx.kernelArgs, remoteAddress: req.socket.remoteAddress });
  if (decision.discovered) ctx.hub.publish('discovered', { mac, address: req.socket.remoteAddress });
  const script = renderIpxeFor(decision);
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(script) });
  res.end(script);
}

async function admin(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, url: URL, method: string): Promise<void> {
  const d = ctx.data;
  const rest = url.pathname.startsWith(ADMIN) ? url.pathname.slice(ADMIN.length) : '\0';
  const parts = rest.split('/');
  const actor = 'api:admin';
  const want = (...m: string[]) => {
    if (!m.includes(method)) throw methodNotAllowed(m);
  };
  switch (parts[0]) {
    case 'deployments': {
      if (parts.length === 1) {
        if (method === 'POST') {
          const b = validateArm(await readJson(req));
          const armed = armDeployment(d, b.node, { image: b.image, layout: b.layout, layoutSource: 'api', inputs: b.inputs, ttlMs: b.ttl ? parseTtl(b.ttl) : undefined, actor });
          const out: ArmResponse = { deployment: armed };
          ctx.hub.publish('deployment', deploymentInfo(getDeploymentRow(d, armed.id)));
          return sendJson(res, 201, out);
        }
        want('GET');
        const node = url.searchParams.get('node');
        return sendJson(res, 200, { deployments: listDeployments(d, { node: node ? urlName(node, 'node') : undefined, active: url.searchParams.get('active') === '1' }) });
      }
      const id = Number(parts[1]);
      if (!/^[0-9]{1,12}$/.test(parts[1]) || parts.length > 3) throw notFound(url.pathname);
      if (parts.length === 3 && parts[2] === 'redeploy') {
        want('POST');
        const armed = redeploy(d, id, { actor });
        return sendJson(res, 201, { deployment: armed } satisfies ArmResponse);
      }
      if (parts.length === 3 && parts[2] === 'events') {
        want('GET');
        return sendJson(res, 200, { events: deploymentEvents(d, id) });
      }
      if (parts.length !== 2) throw notFound(url.pathname);
      want('GET');
      return sendJson(res, 200, { deployment: deploymentInfo(getDeploymentRow(d, id)), events: deploymentEvents(d, id) });
    }
    case 'deploy': {
      // Several nodes at once, selected as on the command line (NAME, @GROUP, PROPERTY=VALUE).
      want('POST');
      const body = await readJson(req);
      const p: Problem[] = [];
      if (!isObject(body)) problems('the deploy request', [bad('$', 'must be an object {"select": [NAME | @GROUP | KEY=VALUE, ...]}')]);
      const b = body as Record<string, unknown>;
      for (const k of Object.keys(b)) if (!['select', 'image', 'layout', 'inputs', 'ttl'].includes(k)) p.push(bad(`$.${k}`, 'is not a known field'));
      const select = stringList(b.select, '$.select', p);
      if (!select?.length) p.push(bad('$.select', 'must name at least one node, @group or property=value'));
      select?.forEach((x, i) => {
        const name = x.startsWith('@') ? x.slice(1) : x.includes('=') ? undefined : x;
        if (name !== undefined && !NAME_RE.test(name)) p.push(bad(`$.select[${i}]`, `"${x.slice(0, 100)}" is not a node or @group name`));
      });
      if (b.image !== undefined && (typeof b.image !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(@[0-9]+)?$/.test(b.image))) p.push(bad('$.image', 'must be an image name, optionally NAME@VERSION'));
      if (b.layout !== undefined && (typeof b.layout !== 'string' || !b.layout)) p.push(bad('$.layout', 'must be the layout XML or a stored layout digest'));
      if (b.ttl !== undefined && (typeof b.ttl !== 'string' || !/^[0-9]+[smhd]?$/.test(b.ttl))) p.push(bad('$.ttl', 'must be a duration such as "6h"'));
      const inputs = stringRecord(b.inputs, '$.inputs', p);
      problems('the deploy request', p);
      const armed: ArmResponse['deployment'][] = [];
      d.write(() => {
        for (const n of selectNodes(d, select!)) {
          armed.push(armDeployment(d, n, { image: b.image as string | undefined, layout: b.layout as string | undefined, layoutSource: 'api', inputs, ttlMs: b.ttl ? parseTtl(b.ttl as string) : undefined, actor }));
        }
      });
      for (const a of armed) ctx.hub.publish('deployment', deploymentInfo(getDeploymentRow(d, a.id)));
      return sendJson(res, 201, { deployments: armed });
    }
    case 'nodes': {
      if (parts.length === 1) {
        if (method === 'POST') {
          const b = validateNodeBody(await readJson(req), true);
          return sendJson(res, 201, { node: addNode(d, b.name!, b, actor) });
        }
        want('GET');
        return sendJson(res, 200, { nodes: listNodes(d) });
      }
      if (parts.length !== 2) throw notFound(url.pathname);
      const name = urlName(parts[1], 'node');
      if (method === 'GET') return sendJson(res, 200, { node: getNode(d, name) });
      if (method === 'PATCH') return sendJson(res, 200, { node: setNode(d, name, validateNodeBody(await readJson(req), false), actor) });
      if (method === 'DELETE') {
        removeNode(d, name, actor);
        return sendJson(res, 200, { ok: true });
      }
      throw methodNotAllowed(['GET', 'PATCH', 'DELETE']);
    }
    case 'groups': {
      if (parts.length === 1) {
        want('GET');
        return sendJson(res, 200, { groups: listGroups(d) });
      }
      if (parts.length !== 2) throw notFound(url.pathname);
      const name = urlName(parts[1], 'group');
      if (method === 'GET') return sendJson(res, 200, { group: groupInfo(d, name) });
      if (method === 'POST' || method === 'DELETE') {
        const p: Problem[] = [];
        const body = method === 'POST' || req.headers['content-length'] ? await readJson(req) : {};
        if (!isObject(body)) problems('the group change', [bad('$', 'must be an object')]);
        const b = body as Record<string, unknown>;
        for (const k of Object.keys(b)) if (!['nodes', 'includes', 'description'].includes(k)) p.push(bad(`$.${k}`, 'is not a known field'));
        const nodes = stringList(b.nodes, '$.nodes', p);
        const includes = stringList(b.includes, '$.includes', p);
        if (b.description !== undefined && typeof b.description !== 'string') p.push(bad('$.description', 'must be a string'));
        problems('the group change', p);
        if (method === 'POST') return sendJson(res, 200, { group: addToGroup(d, name, { nodes, includes, description: b.description as string | undefined }, actor) });
        removeFromGroup(d, name, { nodes, includes }, actor);
        return sendJson(res, 200, { ok: true });
      }
      throw methodNotAllowed(['GET', 'POST', 'DELETE']);
    }
    case 'images': {
      if (parts.length === 1) {
        want('GET');
        return sendJson(res, 200, { images: listImages(d) });
      }
      const ref = urlName(parts[1], 'image');
      if (parts.length === 3 && parts[2] === 'verify') {
        want('POST');
        return sendJson(res, 200, { results: await verifyImages(d, ref) });
      }
      if (parts.length === 3 && parts[2] === 'customizations') {
        want('POST');
        const items = validateCustomizations(await readJson(req));
        return sendJson(res, 201, { image: setCustomizations(d, ref, items, actor) });
      }
      if (parts.length === 3 && parts[2] === 'clone') {
        want('POST');
        const body = await readJson(req);
        const p: Problem[] = [];
        if (!isObject(body)) problems('the clone request', [bad('$', 'must be an object {"name": NAME}')]);
        const b = body as Record<string, unknown>;
        if (typeof b.name !== 'string' || !NAME_RE.test(b.name)) p.push(bad('$.name', 'must be an image name'));
        const inputs = stringRecord(b.inputs, '$.inputs', p);
        problems('the clone request', p);
        return sendJson(res, 201, { image: cloneImage(d, ref, b.name as string, { inputs, actor }) });
      }
      if (parts.length !== 2) throw notFound(url.pathname);
      if (method === 'GET') return sendJson(res, 200, { image: imageInfo(getImage(d, ref)) });
      if (method === 'DELETE') return sendJson(res, 200, { removed: removeImage(d, ref, actor) });
      throw methodNotAllowed(['GET', 'DELETE']);
    }
    case 'gc': {
      want('POST');
      return sendJson(res, 200, garbageCollect(d, actor, url.searchParams.get('dryRun') === '1'));
    }
    case 'discovered': {
      want('GET');
      return sendJson(res, 200, { discovered: listDiscovered(d) });
    }
    case 'audit': {
      want('GET');
      return sendJson(res, 200, { audit: listAudit(d.db, { limit: 1000 }) });
    }
    case 'events': {
      want('GET');
      ctx.hub.attach(req, res, monitorSnapshot(d));
      return;
    }
  }
  throw notFound(url.pathname);
}
