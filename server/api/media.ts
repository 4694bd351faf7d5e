/**
 * Restore media's one route: an installed system's first boot posts its offline install record
 * (installer/medium-record.ts) with its medium's token; it becomes a deployment record with its
 * events (server/db/media.ts), published to the monitor like a network install's result.
 */
import { MEDIA_RECORD_ROUTE, RECORD_MAX_BYTES, type InstallRecord } from '../../common/medium.js';
import { InstallRecordSchema } from '../../common/schema/api.js';
import { deploymentInfo, getDeploymentRow } from '../db/deployments.js';
import { recordMediumInstall } from '../db/media.js';
import { mediumOf } from './auth.js';
import { onlyMethods, type Resource } from './route.js';

export const media: Resource = (app, ctx) => {
  app.post<{ Body: InstallRecord }>(MEDIA_RECORD_ROUTE, { config: { auth: 'medium' }, bodyLimit: RECORD_MAX_BYTES, schema: { body: InstallRecordSchema } }, async (request) => {
    const r = recordMediumInstall(ctx.data, mediumOf(request.raw), request.body);
    if (!r.duplicate) ctx.hub.publish('deployment', deploymentInfo(getDeploymentRow(ctx.data, r.deployment)));
    return { ok: true, ...r };
  });
  onlyMethods(app, MEDIA_RECORD_ROUTE, ['POST']);
};
