/**
 * Small helpers every `ferry` subcommand shares: option parsing with clear usage
 * errors, the data directory, and JSON or text output.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { FerryError } from '../common/errors.js';
import { printable } from '../common/text.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

/** Options every command accepts. */
export const COMMON_OPTIONS = {
  data: { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

/**
 * Parse argv for one subcommand. Unknown options and missing values become
 * FERRY_E_USAGE with the usage text, so every command fails the same way.
 */
export function parse<O extends Options>(argv: string[], options: O, usage: string) {
  try {
    const r = parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true, strict: true });
    return r as unknown as { values: Record<string, any>; positionals: string[] };
  } catch (e) {
    throw new FerryError('FERRY_E_USAGE', `${(e as Error).message}\nusage: ${usage}`, { hint: 'see the usage line above' });
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

export function usageError(message: string, usage: string): FerryError {
  return new FerryError('FERRY_E_USAGE', `${message}\nusage: ${usage}`, { hint: 'see the usage line above' });
}

/** `--data DIR`, else $FERRY_DATA, else /var/lib/ferry. */
export function dataDir(values: Record<string, unknown>): string {
  return (values.data as string | undefined) || process.env.FERRY_DATA || '/var/lib/ferry';
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
