/**
 * GET/HEAD /blobs/sha256:HEX: content-addressed layers, for the admin token and for the deploy
 * token of a deployment whose image uses the blob (checked by the token hook, auth.ts). Served
 * by files.ts on the raw socket (Range, If-Range, ETag, backpressure), outside fastify's reply.
 */
import { existsSync } from 'node:fs';
import { BLOB_PREFIX } from '../../common/protocol.js';
import { blobDigest } from './auth.js';
import { serveFile } from './files.js';
import { httpError } from './http.js';
import { onlyMethods, onRawSocket, pathOf, type Resource } from './route.js';

export const blobs: Resource = (app, ctx) => {
  const url = `${BLOB_PREFIX}:digest`;
  app.route({
    method: ['GET', 'HEAD'],
    url,
    config: { auth: 'blob' },
    handler: async (request, reply) => {
      const digest = blobDigest(pathOf(request));
      const file = ctx.data.blobs.path(digest);
      if (!existsSync(file)) throw httpError('FERRY_E_BLOB_MISSING', `blob ${digest} is not in the store`, 'run `ferry image verify` on the server');
      await onRawSocket(request, reply, () => serveFile(request.raw, reply.raw, file, { etag: `"${digest}"`, contentType: 'application/octet-stream', immutable: true }));
    },
  });
  onlyMethods(app, url, ['GET', 'HEAD']);
};
