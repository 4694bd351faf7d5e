/** GET /api/v1/admin/audit (admin token): the newest 1000 rows of who changed what. */
import { listAudit } from '../db/audit.js';
import { ADMIN, onlyMethods, type Resource } from './route.js';

export const audit: Resource = (app, ctx) => {
  app.get(`${ADMIN}audit`, { config: { auth: 'admin' } }, async () => ({ audit: listAudit(ctx.data.db, { limit: 1000 }) }));
  onlyMethods(app, `${ADMIN}audit`, ['GET'], 'admin');
};
