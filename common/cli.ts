/**
 * Plumbing every command shares, of `ferry` (cli/) and of `ferry-installer` (installer/commands/):
 * option parsing with clear usage errors, the data directory and the files a server keeps there
 * (admin token, the running server's address), and JSON or table output.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { FerryError } from './errors.js';
import { printable } from './text.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

/** Options every command accepts. */
export const COMMON_OPTIONS = {
  data: { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

export function usageError(message: string, usage: string): FerryError {
  return new FerryError('FERRY_E_USAGE', `${message}\nusage: ${usage}`, { hint: 'see the usage line above' });
}

/**
 * Parse argv for one command. Unknown options and missing values become FERRY_E_USAGE with the
 * usage text, so every command fails the same way. Positionals are allowed unless
 * `positionals: false`.
 */
export function parse<O extends Options>(argv: string[], options: O, usage: string, o: { positionals?: boolean } = {}) {
  try {
    const r = parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...options }, allowPositionals: o.positionals ?? true, strict: true });
    return r as unknown as { values: Record<string, any>; positionals: string[] };
  } catch (e) {
    throw usageError((e as Error).message, usage);
  }
}

/**
 * A command with subcommands (`ferry node add …`): the subcommand and its parsed options, or,
 * when help was asked for (exit 0) or no subcommand was named (exit 2), the usage printed and
 * the exit code to return.
 */
export function parseSubcommand<O extends Options>(argv: string[], options: O, usage: string): { sub: string; values: Record<string, any>; positionals: string[] } | number {
  const [sub, ...rest] = argv;
  const { values, positionals } = parse(rest, options, usage);
  if (!sub || values.help || sub === '--help' || sub === '-h') {
    process.stdout.write(usage + '\n');
    return sub ? 0 : 2;
  }
  return { sub, values, positionals };
}

export const DEFAULT_DATA_DIR = '/var/lib/ferry';

/** `--data DIR`, else $FERRY_DATA, else /var/lib/ferry. */
export function dataDir(values: Record<string, unknown>): string {
  return (values.data as string | undefined) || process.env.FERRY_DATA || DEFAULT_DATA_DIR;
}

/** The admin token's file in a data directory (the server creates it, mode 0600). */
export const ADMIN_TOKEN_FILE = 'admin.token';

/**
 * The admin token a command uses: the one given on the command line, else DATA/admin.token.
 * `hint` says how to give it in the calling command's words.
 */
export function readAdminToken(dir: string, o: { given?: string; hint?: string } = {}): string {
  if (o.given) return o.given;
  const file = join(dir, ADMIN_TOKEN_FILE);
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new FerryError('FERRY_E_NO_ADMIN_TOKEN', `no admin token in ${dir} (${file}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'})`, {
      details: { file },
      hint: o.hint ?? 'start the server once (ferry serve --data DIR) to create it, or pass the right --data',
    });
  }
}

/** Written by a running `ferry serve` into its data directory, removed when it stops. */
export interface ServerInfo {
  /** Where this host reaches the server's listener. */
  url: string;
  /** The address machines use (--public-url, else url). */
  publicUrl: string;
  pid?: number;
  startedAt?: string;
}

export function serverInfoFile(dir: string): string {
  return join(dir, 'server.json');
}

/** The running server recorded in a data directory, or undefined when none is (or the file is unreadable). */
export function readServerInfo(dir: string): ServerInfo | undefined {
  try {
    const j = JSON.parse(readFileSync(serverInfoFile(dir), 'utf8')) as Partial<ServerInfo>;
    if (typeof j.url !== 'string') return undefined;
    return { ...j, url: j.url, publicUrl: typeof j.publicUrl === 'string' ? j.publicUrl : j.url };
  } catch {
    return undefined;
  }
}

/**
 * The server's URL: `--server`, else the running server's recorded in the data directory (its
 * own `url`, or with `public` the `publicUrl` machines use). When neither is there, `missing`
 * makes the error (default FERRY_E_SERVER_UNKNOWN).
 */
export function serverUrl(values: Record<string, unknown>, o: { public?: boolean; missing?: (file: string) => FerryError } = {}): string {
  if (typeof values.server === 'string' && values.server) return values.server.replace(/\/+$/, '');
  const dir = dataDir(values);
  const info = readServerInfo(dir);
  if (info) return (o.public ? info.publicUrl : info.url).replace(/\/+$/, '');
  if (o.missing) throw o.missing(serverInfoFile(dir));
  throw new FerryError('FERRY_E_SERVER_UNKNOWN', `no running server recorded in ${dir} (server.json is missing)`, {
    details: { dataDir: dir },
    hint: 'start `ferry serve --data DIR`, or give --server URL',
  });
}

/**
 * Read-only commands (history, audit, node ls, image ls, monitor…) read a data directory and
 * never create one: a missing one is FERRY_E_DATA_DIR_MISSING, which names it.
 */
export function requireDataDir(dir: string): string {
  if (!existsSync(dir)) {
    throw new FerryError('FERRY_E_DATA_DIR_MISSING', `the data directory ${dir} does not exist`, {
      details: { path: dir },
      hint: 'give the right --data DIR (or FERRY_DATA); a new one is made by `ferry serve` or a command that writes (image import, node add)',
    });
  }
  return dir;
}

export function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? Number(x) : x), 2) + '\n');
}

/** A plain aligned table for listings. */
export function printTable(rows: Record<string, unknown>[], columns: string[]): void {
  const cells = rows.map((r) => columns.map((c) => (r[c] === undefined || r[c] === null ? '' : printable(String(r[c])))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((x, i) => x.padEnd(widths[i])).join('  ').trimEnd();
  process.stdout.write(line(columns.map((c) => c.toUpperCase())) + '\n');
  for (const r of cells) process.stdout.write(line(r) + '\n');
}

/** A whole-number option within bounds (`--fanout 64`), or FERRY_E_USAGE naming the option. */
export function intOption(values: Record<string, unknown>, name: string, o: { min: number; max: number; dflt: number }, usage: string): number {
  const v = values[name];
  if (v === undefined) return o.dflt;
  const s = String(v);
  if (!/^\d+$/.test(s) || Number(s) < o.min || Number(s) > o.max) throw usageError(`--${name} must be a whole number from ${o.min} to ${o.max}, not "${s}"`, usage);
  return Number(s);
}

/** Split `ARGS... -- COMMAND...` at the first `--`: options and selections before, the command after. */
export function splitAtDashes(argv: string[]): { before: string[]; after?: string[] } {
  const i = argv.indexOf('--');
  return i < 0 ? { before: argv } : { before: argv.slice(0, i), after: argv.slice(i + 1) };
}
