/**
 * What a resource module (this directory) is made of: the server's context, the admin prefix,
 * the 405 answer for other methods, and the mount of a plain (ctx, req, res) handler. Kept
 * apart from app.ts, which imports every resource module.
 */
import type { Logger } from 'pino';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FanoutContext } from './fanout-routes.js';
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { FerryError } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { API_PREFIX } from '../../common/protocol.js';
import type { DataDir } from '../context.js';
import type { AuthKind } from './auth.js';
import type { DiscoverOptions } from '../boot/decide.js';
import type { EventHub } from './events.js';
import type { SessionStore } from '../ui/sessions.js';
import { methodNotAllowed, sendError } from './http.js';

export interface ServerContext extends FanoutContext {
  data: DataDir;
  adminToken: string;
  publicUrl: string;
  bootDir: string;
  hub: EventHub;
  /** Extra kernel arguments for every install boot (e.g. ferry.shell=1 in tests). */
  kernelArgs: string[];
  /** `ferry serve --discover`: unknown MACs boot the inventory mode (server/boot/decide.ts). */
  discover?: DiscoverOptions;
  /** The web console's sessions (server/ui/sessions.ts); without it session cookies are not accepted. */
  sessions?: SessionStore;
  /** The server's log (server/log.ts), given to fastify; without it nothing is logged. */
  logger?: Logger;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Which token the route needs (auth.ts). */
    auth?: AuthKind;
  }
}

/** The admin API's prefix, and who the audit log says acted through it. */
export const ADMIN = `${API_PREFIX}/admin/`;
export const ACTOR = 'api:admin';

/** A resource module: a fastify plugin that gets the server's context. */
export type Resource = (app: FastifyInstance, ctx: ServerContext) => void | Promise<void>;

/** A route module written on node:http: it reads its own body (http.ts readJson) and answers. */
export type RawHandler = (ctx: ServerContext, req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

const METHODS: HTTPMethods[] = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS'];

/** URL path of a request, without the query. */
export function pathOf(req: FastifyRequest | IncomingMessage): string {
  const u = (req as IncomingMessage).url ?? '/';
  const q = u.indexOf('?');
  return q < 0 ? u : u.slice(0, q);
}

/**
 * Answer 405 (FERRY_E_METHOD_NOT_ALLOWED) for the methods a URL does not serve. `auth` is
 * checked first where it was before the method (the admin API), not where the method was
 * checked first (installer API, blobs, boot files).
 */
export function onlyMethods(app: FastifyInstance, url: string, allowed: HTTPMethods[], auth: AuthKind = 'none'): void {
  const others = METHODS.filter((m) => !allowed.includes(m));
  app.route({
    method: others,
    url,
    config: { auth },
    handler: async () => {
      throw methodNotAllowed(allowed);
    },
  });
}

/**
 * Answer on the raw socket, outside fastify's reply (files, the event stream): fastify no longer
 * sends anything, so a failure is answered here (or the socket closed, once bytes went out).
 */
export async function onRawSocket(request: FastifyRequest, reply: FastifyReply, fn: () => void | Promise<void>): Promise<void> {
  reply.hijack();
  try {
    await fn();
  } catch (e) {
    logFailure(request, e);
    sendError(reply.raw, e);
  }
}

/**
 * Mount a plain (ctx, req, res) handler: the token hook runs as for every route (its grant is
 * `authOf(req)`), the body is left unread for the handler, and what it throws is answered
 * with Ferry's error body.
 */
export function mountRaw(app: FastifyInstance, ctx: ServerContext, route: { method: HTTPMethods | HTTPMethods[]; url: string; auth: AuthKind }, handler: RawHandler): void {
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
    scope.route({
      method: route.method,
      url: route.url,
      config: { auth: route.auth },
      handler: (request, reply) => onRawSocket(request, reply, () => handler(ctx, request.raw, reply.raw)),
    });
  });
}

export function logFailure(request: FastifyRequest, e: unknown): void {
  if (!(e instanceof FerryError) || e.code === 'FERRY_E_INTERNAL') log.error('request failed', { method: request.method, path: pathOf(request), error: (e as Error).message });
}

