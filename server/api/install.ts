/**
 * The installer API (a deployment's token, checked by the token hook): its configuration,
 * its progress events and its result. Every event and result is published to the monitor.
 */
import { INSTALL_ROUTES } from '../../common/protocol.js';
import { withMirrors } from './fanout-routes.js';
import { InstallEventsBodySchema, InstallResultSchema, InventorySchema, SshHostKeysSchema, type InstallEventsBody, type InstallResult, type InventoryBody, type SshHostKeysBody } from '../../common/schema/api.js';
import { recordInstalledHostKeys } from '../ssh/authorize.js';
import { FerryError } from '../../common/errors.js';
import { recordInventory } from '../db/hardware.js';
import { deploymentInfo, getDeploymentRow } from '../db/deployments.js';
import { recordEvents, undelivered } from '../db/deployment-events.js';
import { installConfig, recordResult } from '../db/deployment-lifecycle.js';
import { onlyMethods, type Resource } from './route.js';
import { deploymentOf } from './auth.js';

export const install: Resource = (app, ctx) => {
  const deploy = { auth: 'deploy' } as const;
  app.get<{ Querystring: { peek?: string } }>(INSTALL_ROUTES.config, { config: deploy }, async (request) => {
    const row = deploymentOf(request.raw);
    // ?peek=1 (`ferry install --dry-run`): the configuration only, the deployment left as it is.
    const peek = request.query.peek === '1';
    const cfg = withMirrors(installConfig(ctx.data, row, ctx.publicUrl, { peek }), ctx, request.raw.socket.remoteAddress);
    if (peek) return cfg;
    ctx.hub.publish('deployment', deploymentInfo(getDeploymentRow(ctx.data, row.id)));
    return cfg;
  });
  onlyMethods(app, INSTALL_ROUTES.config, ['GET']);

  app.post<{ Body: InstallEventsBody }>(INSTALL_ROUTES.events, { config: deploy, schema: { body: InstallEventsBodySchema } }, async (request) => {
    const row = deploymentOf(request.raw);
    const stored = recordEvents(ctx.data, row, undelivered(row.id, request.body.events, request.body));
    for (const e of stored) ctx.hub.publish('progress', { deployment: row.id, node: row.node_name, event: e });
    return { ok: true, stored: stored.length };
  });
  onlyMethods(app, INSTALL_ROUTES.events, ['POST']);

  app.post<{ Body: InstallResult }>(INSTALL_ROUTES.result, { config: deploy, schema: { body: InstallResultSchema } }, async (request) => {
    const row = deploymentOf(request.raw);
    ctx.hub.publish('deployment', recordResult(ctx.data, row, request.body));
    return { ok: true };
  });
  onlyMethods(app, INSTALL_ROUTES.result, ['POST']);

  // The hardware the installer found: the node's hw.* properties (issue 18).
  app.post<{ Body: InventoryBody }>(INSTALL_ROUTES.inventory, { config: deploy, schema: { body: InventorySchema } }, async (request) => {
    const row = deploymentOf(request.raw);
    if (row.node_id === null) throw new FerryError('FERRY_E_NODE_NOT_FOUND', `the node of deployment ${row.id} (${row.node_name}) was removed`, { details: { node: row.node_name }, hint: 'add the node again and arm it' });
    return { ok: true, properties: recordInventory(ctx.data, row.node_id, request.body, `deployment:${row.id}`) };
  });
  onlyMethods(app, INSTALL_ROUTES.inventory, ['POST']);

  // The installed system's fresh SSH host keys (issue 15): recorded for the node, so Ferry's SSH
  // connections to it need no --host-key; its address, when unset, from the body or this request.
  app.post<{ Body: SshHostKeysBody }>(INSTALL_ROUTES.sshHostKeys, { config: deploy, schema: { body: SshHostKeysSchema } }, async (request) => {
    const row = deploymentOf(request.raw);
    if (row.node_id === null) throw new FerryError('FERRY_E_NODE_NOT_FOUND', `the node of deployment ${row.id} (${row.node_name}) was removed`, { details: { node: row.node_name }, hint: 'add the node again and arm it' });
    const r = recordInstalledHostKeys(ctx.data, { id: row.node_id, name: row.node_name, deployment: row.id }, request.body, request.raw.socket.remoteAddress);
    return { ok: true, ...r };
  });
  onlyMethods(app, INSTALL_ROUTES.sshHostKeys, ['POST']);
};
