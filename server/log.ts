/**
 * The server's log: fastify's own logger (pino), one structured line per HTTP request, per
 * boot decision, per TFTP transfer and per deployment state change, as text for people or
 * JSON lines for machines (`ferry serve --log-format text|json --log-level LEVEL`).
 *
 * Secrets never reach it: request lines carry no header, query values that may hold a token
 * are replaced, and pino's redaction removes token, password, cookie and authorization fields
 * wherever a call site passes them by mistake.
 *
 * The server's older `common/log.ts` calls (TFTP transfers, lost deployments, failed requests)
 * are forwarded here while a server with a log runs, so every line has one format.
 */
import { pino, type Logger, type DestinationStream, type LevelWithSilent } from 'pino';
import { log as commonLog, type LogRecord } from '../common/log.js';
import { FerryError } from '../common/errors.js';
import type { BootDecision } from './boot/ipxe.js';
import type { NextBoot } from './boot/decide.js';

export type LogFormat = 'text' | 'json';
/** What a call site needs of a logger: pino's, fastify's request.log, a child. */
export interface Lines {
  info(obj: object, msg: string): void;
}
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];
export const LOG_LEVELS: readonly LevelWithSilent[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export interface ServerLogOptions {
  format?: LogFormat;
  /** Default info. */
  level?: LevelWithSilent;
  /** Where lines go (default stderr); tests pass a collector. */
  destination?: { write(line: string): unknown };
}

/** Field names whose values are never logged, at the top level and one level down. */
const SECRET_KEYS = ['token', 'password', 'authorization', 'cookie', 'set-cookie', 'adminToken', 'secret', 'x-ferry-token'];
export const REDACT_PATHS = [...SECRET_KEYS.map((k) => `["${k}"]`), ...SECRET_KEYS.map((k) => `*["${k}"]`), 'req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'];

/** Query parameters whose values are replaced in a logged URL. */
const SECRET_QUERY = /^(token|access_token|auth|key|password|secret|session)$/i;

/** A request URL as logged: the path, and the query with secret values replaced. Bounded. */
export function loggableUrl(url: string): string {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  let out = path;
  if (q >= 0) {
    const params = url
      .slice(q + 1)
      .split('&')
      .map((p) => {
        const eq = p.indexOf('=');
        const k = eq < 0 ? p : p.slice(0, eq);
        let name = k;
        try {
          name = decodeURIComponent(k);
        } catch {
          /* keep it as sent */
        }
        return eq >= 0 && SECRET_QUERY.test(name) ? `${k}=[redacted]` : p;
      });
    out += '?' + params.join('&');
  }
  // Ferry's tokens have a recognisable prefix: one in a path (never expected) is cut out too.
  out = out.replace(/ferry-(deploy|admin|session)-[A-Za-z0-9_-]+/g, 'ferry-$1-[redacted]');
  return out.length > 512 ? out.slice(0, 512) + '…' : out;
}

const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const OMIT = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

/** One JSON line of pino as one text line: `2026-12-04T18:00:00.000Z info  msg key=value ...`. */
export function textLine(json: string): string {
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(json);
  } catch {
    return json;
  }
  const ts = typeof r.time === 'number' ? new Date(r.time).toISOString() : '';
  const level = (LEVEL_NAMES[r.level as number] ?? String(r.level)).padEnd(5);
  const fields = Object.entries(r)
    .filter(([k]) => !OMIT.has(k))
    .map(([k, v]) => {
      const s = typeof v === 'string' ? v : JSON.stringify(v);
      return `${k}=${/^[^\s"=]*$/.test(s) && s !== '' ? s : JSON.stringify(s)}`;
    });
  return `${ts} ${level} ${String(r.msg ?? '')}${fields.length ? ' ' + fields.join(' ') : ''}\n`;
}

function textStream(out: { write(line: string): unknown }): DestinationStream {
  return { write: (line: string) => void out.write(textLine(line.endsWith('\n') ? line.slice(0, -1) : line)) };
}

export function checkLogOptions(format: string | undefined, level: string | undefined): { format: LogFormat; level: LevelWithSilent } {
  if (format !== undefined && !(LOG_FORMATS as string[]).includes(format)) {
    throw new FerryError('FERRY_E_USAGE', `--log-format "${format}" is not one of ${LOG_FORMATS.join(', ')}`, { hint: 'write --log-format text (the default) or --log-format json' });
  }
  if (level !== undefined && !(LOG_LEVELS as string[]).includes(level)) {
    throw new FerryError('FERRY_E_USAGE', `--log-level "${level}" is not one of ${LOG_LEVELS.join(', ')}`, { hint: 'write --log-level info (the default), debug, warn or error' });
  }
  return { format: (format as LogFormat) ?? 'text', level: (level as LevelWithSilent) ?? 'info' };
}

/** The logger fastify is given (`loggerInstance`). */
export function createServerLogger(o: ServerLogOptions = {}): Logger {
  const out = o.destination ?? process.stderr;
  const dest: DestinationStream = (o.format ?? 'text') === 'json' ? { write: (line: string) => void out.write(line) } : textStream(out);
  return pino(
    {
      level: o.level ?? 'info',
      base: undefined,
      timestamp: pino.stdTimeFunctions.epochTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // fastify's own request/response serializers carry headers; Ferry's request line is its own.
      serializers: { req: () => undefined, res: () => undefined },
    },
    dest,
  );
}

/**
 * Forward the records of `common/log.ts` (TFTP transfers, lost deployments, failed requests)
 * to `logger` while the server runs; the returned function stops it.
 */
export function forwardCommonLog(logger: Logger): () => void {
  const remove = commonLog.addSink((r: LogRecord) => {
    const { ts: _ts, level, msg, ...fields } = r;
    logger[level](fields, msg);
  });
  const before = commonLog.toStderr;
  commonLog.toStderr = false;
  return () => {
    remove();
    commonLog.toStderr = before;
  };
}

/** Which of fastify's request lines are written: one per request, when it has been answered. */
export function logRequest(logger: Lines, r: { method: string; url: string; status: number; ms: number; remote?: string; completed: boolean }): void {
  logger.info({ method: r.method, url: loggableUrl(r.url), status: r.status, ms: Math.round(r.ms * 10) / 10, remote: r.remote, ...(r.completed ? {} : { aborted: true }) }, 'request');
}

/** The boot decision's line: what a MAC was answered and why (never the deploy token). */
export function logBoot(logger: Lines | undefined, via: 'ipxe' | 'pxelinux', d: BootDecision & { discovered?: boolean; next?: NextBoot }, address?: string): void {
  logger?.info({ via, mac: d.mac, node: d.label, action: d.action, reason: d.action === 'install' ? (d.mode === 'inventory' ? 'unknown machine (discovery boot)' : d.next?.reason ?? 'deployment armed') : d.reason, deployment: d.next?.deployment, address, ...(d.discovered ? { discovered: true } : {}) }, 'boot decision');
}

/**
 * A tap on the monitor's `deployment` messages (every server-side state change publishes one):
 * one line each time a deployment's status or stage changes. Bounded memory: the newest 10000.
 */
export function deploymentChangeLogger(logger: Lines): (type: string, data: unknown) => void {
  const seen = new Map<number, string>();
  return (type, data) => {
    if (type !== 'deployment' || !data || typeof data !== 'object') return;
    const d = data as { id?: number; node?: string; status?: string; stage?: string; error?: { code?: string; message?: string } };
    if (typeof d.id !== 'number') return;
    const key = `${d.status}`;
    const prev = seen.get(d.id);
    if (prev === key) return;
    seen.delete(d.id);
    seen.set(d.id, key);
    if (seen.size > 10_000) seen.delete(seen.keys().next().value as number);
    logger.info({ deployment: d.id, node: d.node, status: d.status, from: prev, stage: d.stage, ...(d.error ? { error: d.error.code ?? d.error.message } : {}) }, 'deployment state');
  };
}
