/**
 * The web console under /ui/ (server/ui/): the page, its bundled script and style (built by
 * scripts/bundle.mjs into build/ui/, no CDN), and its session routes: POST /ui/login (admin
 * token in, HttpOnly session cookie and CSRF token out), GET /ui/session, POST /ui/logout.
 * Everything else the page shows comes from the admin API and the event stream, with the
 * session cookie standing for the token (auth.ts): the console has no data of its own.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { FerryError } from '../../common/errors.js';
import { LoginRequestSchema, type LoginRequest } from '../../common/schema/api.js';
import { sameSecret } from '../context.js';
import { CSRF_HEADER, cookieHeader, sessionCookie, type SessionStore } from '../ui/sessions.js';
import { renderShell } from '../ui/shell.js';
import { httpError } from './http.js';
import { onlyMethods, type Resource } from './route.js';

export const UI_PREFIX = '/ui/';

/** build/ui next to the bundled CLI (build/ferry.mjs), or from the sources (server/api/ui.ts). */
function uiDir(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  return [join(here, 'ui'), join(here, '..', '..', 'build', 'ui')].find((d) => existsSync(join(d, 'app.js')));
}

const ASSETS: Record<string, string> = { 'app.js': 'text/javascript; charset=utf-8', 'app.css': 'text/css; charset=utf-8' };

/** Headers of every console answer: no framing, no inline or remote scripts. */
function pageHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
    .header('x-frame-options', 'DENY')
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer');
}

function secure(request: FastifyRequest): boolean {
  return request.protocol === 'https';
}

function store(sessions: SessionStore | undefined): SessionStore {
  if (!sessions) throw new FerryError('FERRY_E_INTERNAL', 'the server runs without console sessions');
  return sessions;
}

export const ui: Resource = (app, ctx) => {
  const none = { auth: 'none' } as const;
  app.get('/ui', { config: none }, async (_request, reply) => reply.redirect(UI_PREFIX));
  onlyMethods(app, '/ui', ['GET']);
  app.get(UI_PREFIX, { config: none }, async (_request, reply) => pageHeaders(reply).type('text/html; charset=utf-8').send(renderShell()));
  onlyMethods(app, UI_PREFIX, ['GET']);

  for (const [name, type] of Object.entries(ASSETS)) {
    app.get(UI_PREFIX + name, { config: none }, async (_request, reply) => {
      const dir = uiDir();
      if (!dir) throw httpError('FERRY_E_UI_NOT_BUILT', `the web console's bundle (build/ui/${name}) is missing`, 'build it with `node scripts/bundle.mjs` (make build) and restart ferry serve');
      return pageHeaders(reply).type(type).header('cache-control', 'no-cache').send(readFileSync(join(dir, name)));
    });
    onlyMethods(app, UI_PREFIX + name, ['GET']);
  }

  app.post<{ Body: LoginRequest }>(`${UI_PREFIX}login`, { config: none, schema: { body: LoginRequestSchema } }, async (request, reply) => {
    if (!sameSecret(request.body.token, ctx.adminToken)) throw httpError('FERRY_E_TOKEN_INVALID', 'this is not the admin token', 'paste the admin token from DATA/admin.token (ferry serve prints where it is)');
    const sessions = store(ctx.sessions);
    const old = sessionCookie(request.raw);
    if (old) sessions.end(old);
    const s = sessions.create();
    return pageHeaders(reply)
      .header('set-cookie', cookieHeader(s.id, { secure: secure(request), maxAgeS: Math.floor(sessions.limits.maxAgeMs / 1000) }))
      .send({ session: true, csrf: s.csrf, idleSeconds: sessions.limits.idleMs / 1000, csrfHeader: CSRF_HEADER });
  });
  onlyMethods(app, `${UI_PREFIX}login`, ['POST']);

  // GET /ui/session: the CSRF token of the page's session (a reloaded page has lost it from memory),
  // or {session: false}: not being logged in is an answer here, not an error.
  app.get(`${UI_PREFIX}session`, { config: none }, async (request, reply) => {
    const l = store(ctx.sessions).lookup(sessionCookie(request.raw));
    if (!l.ok) return pageHeaders(reply).send({ session: false, why: l.why });
    return pageHeaders(reply).send({ session: true, csrf: l.session.csrf, csrfHeader: CSRF_HEADER });
  });
  onlyMethods(app, `${UI_PREFIX}session`, ['GET']);

  // Logging out changes state: it needs the session's CSRF token like any other change.
  app.post(`${UI_PREFIX}logout`, { config: none }, async (request, reply) => {
    const sessions = store(ctx.sessions);
    const l = sessions.lookup(sessionCookie(request.raw));
    if (l.ok) {
      if (!sessions.csrfOk(l.session, request.headers[CSRF_HEADER])) throw httpError('FERRY_E_CSRF', `logging out needs the session's ${CSRF_HEADER} header`, 'log out from the console page, which sends it');
      sessions.end(l.session.id);
    }
    return pageHeaders(reply).header('set-cookie', cookieHeader('', { secure: secure(request), maxAgeS: 0 })).send({ ok: true });
  });
  onlyMethods(app, `${UI_PREFIX}logout`, ['POST']);
};
