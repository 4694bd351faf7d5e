/**
 * GET /api/v1/admin/events (admin token): the live event stream behind `ferry monitor`
 * (server-sent events, events.ts), starting with a snapshot. The stream is written on the raw
 * socket, outside fastify's reply, and lives until the client or the server goes.
 */
import { monitorSnapshot } from '../monitor.js';
import { ADMIN, onlyMethods, onRawSocket, type Resource } from './route.js';

export const monitor: Resource = (app, ctx) => {
  app.get(`${ADMIN}events`, { config: { auth: 'admin' } }, async (request, reply) => {
    const snapshot = monitorSnapshot(ctx.data);
    await onRawSocket(request, reply, () => ctx.hub.attach(request.raw, reply.raw, snapshot));
  });
  onlyMethods(app, `${ADMIN}events`, ['GET'], 'admin');
};
