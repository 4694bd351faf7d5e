/**
 * Images (admin token): list, read, delete (NAME or NAME@VERSION), verify, set customization
 * items (a new version), clone; and garbage collection of unused blobs (POST /gc?dryRun=1).
 */
import { CloneRequestSchema, CustomizationsSchema, type CloneRequest, type CustomizationItem } from '../../common/schema/api.js';
import { cloneImage, getImage, imageInfo, listImages, removeImage, setCustomizations } from '../store/images.js';
import { garbageCollect, verifyImages } from '../store/image-gc.js';
import { ADMIN, ACTOR, onlyMethods, type Resource } from './route.js';
import { urlName } from './http.js';

export const images: Resource = (app, ctx) => {
  const d = ctx.data;
  const admin = { auth: 'admin' } as const;
  app.get(`${ADMIN}images`, { config: admin }, async () => ({ images: listImages(d) }));
  onlyMethods(app, `${ADMIN}images`, ['GET'], 'admin');

  const one = `${ADMIN}images/:ref`;
  const refOf = (p: unknown) => urlName((p as { ref: string }).ref, 'image');
  app.get(one, { config: admin }, async (request) => ({ image: imageInfo(getImage(d, refOf(request.params))) }));
  app.delete(one, { config: admin }, async (request) => ({ removed: removeImage(d, refOf(request.params), ACTOR) }));
  onlyMethods(app, one, ['GET', 'DELETE'], 'admin');

  app.post(`${one}/verify`, { config: admin }, async (request) => ({ results: await verifyImages(d, refOf(request.params)) }));
  onlyMethods(app, `${one}/verify`, ['POST'], 'admin');
  app.post<{ Body: CustomizationItem[] }>(`${one}/customizations`, { config: admin, schema: { body: CustomizationsSchema } }, async (request, reply) =>
    reply.code(201).send({ image: setCustomizations(d, refOf(request.params), request.body, ACTOR) }),
  );
  onlyMethods(app, `${one}/customizations`, ['POST'], 'admin');
  app.post<{ Body: CloneRequest }>(`${one}/clone`, { config: admin, schema: { body: CloneRequestSchema } }, async (request, reply) =>
    reply.code(201).send({ image: cloneImage(d, refOf(request.params), request.body.name, { inputs: request.body.inputs, actor: ACTOR }) }),
  );
  onlyMethods(app, `${one}/clone`, ['POST'], 'admin');

  app.post<{ Querystring: { dryRun?: string } }>(`${ADMIN}gc`, { config: admin }, async (request) => garbageCollect(d, ACTOR, request.query.dryRun === '1'));
  onlyMethods(app, `${ADMIN}gc`, ['POST'], 'admin');
};
