/**
 * The server's HTTP API on fastify: one plugin per resource (this directory), bodies validated
 * by the shared schemas (common/schema/), tokens checked in one hook (auth.ts), and every
 * refusal answered with Ferry's error body (http.ts). `buildApp` is what `ferry serve` listens
 * with and what unit tests call `inject()` on.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import { FerryError, ValidationError } from '../../common/errors.js';
import { compile, problemsOf } from '../../common/schema/validate.js';
import { authOfPath, authorize, grant, type AuthKind } from './auth.js';
import { bodyTooLarge, checkJsonType, clientErrorAnswer, DEFAULT_BODY_LIMIT, errorAnswer, notFound, parseJsonBody } from './http.js';
import { logFailure, pathOf, type Resource, type ServerContext } from './route.js';
import { audit } from './audit.js';
import { logRequest } from '../log.js';
import { blobs } from './blobs.js';
import { boot } from './boot.js';
import { deployments } from './deployments.js';
import { cancel } from './cancel-routes.js';
import { fanout } from './fanout-routes.js';
import { torrent } from './torrent-routes.js';
import { groups } from './groups.js';
import { images } from './images.js';
import { install } from './install.js';
import { discovery } from './discovery.js';
import { media } from './media.js';
import { monitor } from './monitor.js';
import { nodes } from './nodes.js';
import { power } from './power.js';
import { ui } from './ui.js';

/** Every resource of the server; a new module is one more line here (docs/architecture.md). */
export type { ServerContext } from './route.js';

export const RESOURCES: Resource[] = [blobs, boot, install, discovery, media, fanout, torrent, deployments, cancel, nodes, power, groups, images, audit, monitor, ui];

/** fastify's own refusals, as Ferry errors. */
function ferryErrorOf(e: unknown): unknown {
  if (e instanceof FerryError) return e;
  const code = (e as { code?: string }).code;
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return bodyTooLarge(DEFAULT_BODY_LIMIT);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new FerryError('FERRY_E_UNSUPPORTED_MEDIA_TYPE', 'the request body must be application/json', { hint: 'send JSON with Content-Type: application/json' });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_BAD_URL':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return new ValidationError('FERRY_E_BAD_REQUEST', 'the request', [{ severity: 'error', code: 'FERRY_E_BAD_REQUEST', path: '$', message: (e as Error).message }]);
  }
  if ((e as { statusCode?: number }).statusCode === 400) return new ValidationError('FERRY_E_BAD_REQUEST', 'the request', [{ severity: 'error', code: 'FERRY_E_BAD_REQUEST', path: '$', message: (e as Error).message }]);
  return e;
}

function answer(reply: FastifyReply, e: unknown): FastifyReply {
  const a = errorAnswer(ferryErrorOf(e));
  return reply.code(a.status).headers(a.headers).header('cache-control', 'no-store').send(a.body);
}

/** Limits of time on receiving a request (sending an answer, such as a long blob, is not bounded). */
export const TIMEOUTS = { headersMs: 30_000, requestMs: 120_000, keepAliveMs: 10_000 };

/** One route the app registers: its method, URL pattern and the token it needs. */
export interface RouteInfo {
  method: string;
  url: string;
  auth: AuthKind;
}

const ROUTES = new WeakMap<FastifyInstance, RouteInfo[]>();

/** Every route `buildApp` registered, in order (test/integration/server/api-fuzz.test.ts walks them all). */
export function routesOf(app: FastifyInstance): RouteInfo[] {
  return [...(ROUTES.get(app) ?? [])];
}

/** The app with every resource, plus `extra` modules (tests, or modules not yet in RESOURCES). */
export async function buildApp(ctx: ServerContext, extra: Resource[] = []): Promise<FastifyInstance> {
  const app = Fastify({
    ...(ctx.logger ? { loggerInstance: ctx.logger as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }) } : { logger: false }),
    bodyLimit: DEFAULT_BODY_LIMIT,
    requestTimeout: TIMEOUTS.requestMs,
    keepAliveTimeout: TIMEOUTS.keepAliveMs,
    // Names may be 128 characters plus @VERSION; find-my-way's default of 100 would answer 404.
    routerOptions: { maxParamLength: 1000 },
    exposeHeadRoutes: false,
    forceCloseConnections: true,
    return503OnClosing: true,
    clientErrorHandler: clientErrorAnswer,
    frameworkErrors: (e, _request, reply) => {
      answer(reply, e);
    },
  });
  app.server.headersTimeout = TIMEOUTS.headersMs;

  // Bodies: JSON by Ferry's rules (http.ts), whatever the Content-Type says, so a wrong one is 415.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: DEFAULT_BODY_LIMIT }, (request, body, done) => {
    try {
      checkJsonType(request.headers['content-type']);
      done(null, parseJsonBody(body as string));
    } catch (e) {
      done(e as Error, undefined);
    }
  });
  // Validation: the shared schemas' compiled validators, refusing with every problem at once.
  app.setValidatorCompiler(({ schema }) => {
    const v = compile(schema);
    return (data: unknown) => {
      if (v(data)) return { value: data };
      const s = schema as { ferryCode?: string; ferryWhat?: string };
      const code = s.ferryCode ?? 'FERRY_E_BAD_REQUEST';
      return { error: new ValidationError(code, s.ferryWhat ?? 'the request body', problemsOf(v.errors, data, code)) };
    };
  });

  // One log line per request, when its answer is over (raw and streamed answers included).
  app.addHook('onRequest', async (request, reply) => {
    if (ctx.logger) reply.raw.once('close', () => logRequest(request.log, { method: request.method, url: request.url, status: reply.raw.statusCode, ms: reply.elapsedTime, remote: request.ip, completed: reply.raw.writableFinished }));
  });
  app.addHook('onRequest', async (request) => {
    const path = pathOf(request);
    const kind = request.is404 ? authOfPath(path) : (request.routeOptions.config.auth ?? 'none');
    grant(request.raw, authorize(ctx, request.raw, kind, path));
  });
  app.addHook('onSend', async (_request, reply) => {
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
  });
  app.setErrorHandler((e, request, reply) => {
    const err = ferryErrorOf(e);
    logFailure(request, err);
    return answer(reply, err);
  });
  app.setNotFoundHandler((request) => {
    throw notFound(pathOf(request));
  });

  const routes: RouteInfo[] = [];
  ROUTES.set(app, routes);
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) routes.push({ method, url: r.url ?? r.path, auth: r.config?.auth ?? 'none' });
  });
  for (const r of [...RESOURCES, ...extra]) await app.register(async (scope) => r(scope, ctx));
  return app;
}
