/**
 * Deployments (admin token): arm one node (POST /deployments, what `ferry deploy` and
 * `ferry install --node` send), arm a selection (POST /deploy: NAME, @GROUP, KEY=VALUE), list,
 * read one with its events, redeploy a record. Every armed deployment is published.
 */
import { ADMIN_ROUTES, type ArmResponse } from '../../common/protocol.js';
import { ArmRequestSchema, DeployRequestSchema, type ArmRequest, type DeployRequest } from '../../common/schema/api.js';
import { ValidationError } from '../../common/errors.js';
import { armDeployment, deploymentInfo, ensureArmIndex, getDeploymentRow, listDeployments, newBatch, parseTtl, redeploy, transportOf, transportRequest, type TransportRequest } from '../db/deployments.js';
import { deploymentEvents } from '../db/deployment-events.js';
import type { DataDir } from '../context.js';
import { selectNodes } from '../db/groups.js';
import { ADMIN, ACTOR, onlyMethods, pathOf, type Resource } from './route.js';
import { notFound, urlName } from './http.js';

const ID_RE = /^[0-9]{1,12}$/;

/** The transport options of a request, checked as the CLI's are (every problem at once). */
function transportOf_(b: { transport?: string; minReceivers?: number; maxWait?: number; maxBitrate?: string; seedWait?: number }): TransportRequest {
  return transportRequest({ transport: b.transport, minReceivers: b.minReceivers, maxWait: b.maxWait, maxBitrate: b.maxBitrate, seedWait: b.seedWait });
}

/** Session options without a multicast deployment among those armed: refused, as `ferry deploy` does. */
function checkSessionOptions(d: DataDir, t: TransportRequest, ids: number[]): void {
  if ('seedWaitS' in t && !ids.some((id) => transportOf(getDeploymentRow(d, id)).kind === 'torrent')) {
    throw new ValidationError('FERRY_E_BAD_VALUE', 'the transport options are invalid', [
      { severity: 'error', code: 'FERRY_E_BAD_VALUE', path: 'seedWait', message: 'is a torrent option, but no node of this request deploys by torrent', hint: 'add "transport": "torrent", or set the nodes\' default transport (ferry node set --transport torrent)' },
    ]);
  }
  const given = (['minReceivers', 'maxWaitS', 'maxBitrate'] as const).filter((k) => k in t);
  if (!given.length || ids.some((id) => transportOf(getDeploymentRow(d, id)).kind === 'multicast')) return;
  const names = { minReceivers: 'minReceivers', maxWaitS: 'maxWait', maxBitrate: 'maxBitrate' } as const;
  throw new ValidationError(
    'FERRY_E_BAD_VALUE',
    'the transport options are invalid',
    given.map((k) => ({
      severity: 'error' as const,
      code: 'FERRY_E_BAD_VALUE',
      path: names[k],
      message: 'is a multicast session option, but no node of this request deploys by multicast',
      hint: 'add "transport": "multicast", or set the nodes\' default transport (ferry node set --transport multicast)',
    })),
  );
}

export const deployments: Resource = (app, ctx) => {
  const d = ctx.data;
  const admin = { auth: 'admin' } as const;
  const publish = (id: number) => ctx.hub.publish('deployment', deploymentInfo(getDeploymentRow(d, id)));

  app.post<{ Body: ArmRequest }>(ADMIN_ROUTES.deployments, { config: admin, schema: { body: ArmRequestSchema } }, async (request, reply) => {
    const b = request.body;
    const transport = transportOf_(b);
    await ensureArmIndex(d, [b.node], b.image);
    const armed = d.write(() => {
      const a = armDeployment(d, b.node, { image: b.image, layout: b.layout, layoutSource: 'api', inputs: b.inputs, ttlMs: b.ttl ? parseTtl(b.ttl) : undefined, actor: ACTOR, transport });
      checkSessionOptions(d, transport, [a.id]);
      return a;
    });
    publish(armed.id);
    return reply.code(201).send({ deployment: armed } satisfies ArmResponse);
  });
  app.get<{ Querystring: { node?: string; active?: string } }>(ADMIN_ROUTES.deployments, { config: admin }, async (request) => {
    const node = typeof request.query.node === 'string' && request.query.node ? urlName(request.query.node, 'node') : undefined;
    return { deployments: listDeployments(d, { node, active: request.query.active === '1' }) };
  });
  onlyMethods(app, ADMIN_ROUTES.deployments, ['GET', 'POST'], 'admin');

  /** The id in the URL, or 404 for anything else (it names no file, but keep URLs exact). */
  const idOf = (request: { params: unknown; url: string }): number => {
    const id = (request.params as { id: string }).id;
    if (!ID_RE.test(id)) throw notFound(pathOf(request as never));
    return Number(id);
  };
  const one = `${ADMIN_ROUTES.deployments}/:id`;
  app.get(one, { config: admin }, async (request) => {
    const id = idOf(request);
    return { deployment: deploymentInfo(getDeploymentRow(d, id)), events: deploymentEvents(d, id) };
  });
  onlyMethods(app, one, ['GET'], 'admin');
  app.get(`${one}/events`, { config: admin }, async (request) => ({ events: deploymentEvents(d, idOf(request)) }));
  onlyMethods(app, `${one}/events`, ['GET'], 'admin');
  app.post(`${one}/redeploy`, { config: admin }, async (request, reply) => {
    const armed = redeploy(d, idOf(request), { actor: ACTOR });
    return reply.code(201).send({ deployment: armed } satisfies ArmResponse);
  });
  onlyMethods(app, `${one}/redeploy`, ['POST'], 'admin');

  app.post<{ Body: DeployRequest }>(`${ADMIN}deploy`, { config: admin, schema: { body: DeployRequestSchema } }, async (request, reply) => {
    const b = request.body;
    const transport = transportOf_(b);
    const armed: ArmResponse['deployment'][] = [];
    // One batch, as one `ferry deploy`: the nodes armed here are one multicast session's receivers.
    const batch = newBatch();
    const nodes = selectNodes(d, b.select);
    await ensureArmIndex(d, nodes, b.image);
    d.write(() => {
      for (const n of nodes) {
        armed.push(armDeployment(d, n, { image: b.image, layout: b.layout, layoutSource: 'api', inputs: b.inputs, ttlMs: b.ttl ? parseTtl(b.ttl) : undefined, actor: ACTOR, transport, batch }));
      }
      checkSessionOptions(d, transport, armed.map((a) => a.id));
    });
    for (const a of armed) publish(a.id);
    return reply.code(201).send({ deployments: armed });
  });
  onlyMethods(app, `${ADMIN}deploy`, ['POST'], 'admin');
};
