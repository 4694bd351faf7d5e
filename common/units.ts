import { FerryError } from './errors.js';

/**
 * Sizes as SystemImager's layouts and Ferry's command line write them.
 * - B; kB/KB, MB, GB, TB, PB: powers of ten; KiB, MiB, GiB, TiB, PiB: powers of two.
 * - K, M, G, T (no "B"): powers of two, as SystemImager's K sizes (`2097152K`) and
 *   parted/LVM use them.
 * - s / sectors: multiples of the disk's logical sector size (resolved later).
 * - %: a share of the disk or volume group (resolved later).
 * - `*`: fill what is left (resolved later).
 */
export type SizeSpec =
  | { kind: 'bytes'; bytes: bigint }
  | { kind: 'sectors'; sectors: bigint }
  | { kind: 'percent'; percent: number }
  | { kind: 'fill' };

const UNITS: Record<string, bigint> = {
  b: 1n,
  kb: 1000n, mb: 1000n ** 2n, gb: 1000n ** 3n, tb: 1000n ** 4n, pb: 1000n ** 5n,
  kib: 1024n, mib: 1024n ** 2n, gib: 1024n ** 3n, tib: 1024n ** 4n, pib: 1024n ** 5n,
  k: 1024n, m: 1024n ** 2n, g: 1024n ** 3n, t: 1024n ** 4n, p: 1024n ** 5n,
};

/** Normalise a unit name; SystemImager wrote `MB`, `mb`, `MiB`, `percent`, `sectors`… */
export function normaliseUnit(u: string): string | undefined {
  const l = u.trim().toLowerCase();
  if (l === '' ) return undefined;
  if (l === '%' || l === 'percent' || l === 'percentage') return '%';
  if (l === 's' || l === 'sector' || l === 'sectors') return 's';
  if (l === 'byte' || l === 'bytes') return 'b';
  if (l in UNITS) return l;
  return undefined;
}

export function knownUnits(): string[] {
  return ['B', 'kB', 'MB', 'GB', 'TB', 'KiB', 'MiB', 'GiB', 'TiB', 'K', 'M', 'G', 'T', 's', '%'];
}

/**
 * Parse "500", "1.5GiB", "2097152K", "50%", "*", "2048s" into a SizeSpec.
 * A bare number takes `defaultUnit` (a layout's unit_of_measurement; MB if absent,
 * as in SystemImager). Throws FERRY_E_BAD_SIZE on anything else.
 */
export function parseSize(input: string, defaultUnit = 'MB'): SizeSpec {
  const s = input.trim();
  if (s === '*') return { kind: 'fill' };
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z%]*)$/.exec(s);
  if (!m) {
    throw new FerryError('FERRY_E_BAD_SIZE', `"${input}" is not a size`, {
      details: { input },
      hint: `write a non-negative number with an optional unit (${knownUnits().join(', ')}), or * to fill the rest`,
    });
  }
  const unit = normaliseUnit(m[2] || defaultUnit);
  if (!unit) {
    throw new FerryError('FERRY_E_BAD_SIZE', `"${input}" has an unknown unit "${m[2] || defaultUnit}"`, {
      details: { input, unit: m[2] || defaultUnit },
      hint: `use one of ${knownUnits().join(', ')}`,
    });
  }
  if (unit === '%') {
    const p = Number(m[1]);
    if (p > 100) {
      throw new FerryError('FERRY_E_BAD_SIZE', `"${input}" is more than 100%`, { details: { input }, hint: 'use a share between 0 and 100%' });
    }
    return { kind: 'percent', percent: p };
  }
  const [whole, frac = ''] = m[1].split('.');
  if (unit === 's') {
    if (frac && /[1-9]/.test(frac)) {
      throw new FerryError('FERRY_E_BAD_SIZE', `"${input}": sectors must be a whole number`, { details: { input } });
    }
    return { kind: 'sectors', sectors: BigInt(whole) };
  }
  const mult = UNITS[unit];
  // Exact decimal arithmetic: 1.5GiB is 1610612736 bytes, not a float approximation.
  const scale = 10n ** BigInt(frac.length);
  const bytes = (BigInt(whole + frac) * mult) / scale;
  return { kind: 'bytes', bytes };
}

/** Parse a size that must be absolute (command-line `--disk-size 20GiB`). */
export function parseBytes(input: string, defaultUnit = 'B'): bigint {
  const spec = parseSize(input, defaultUnit);
  if (spec.kind !== 'bytes') {
    throw new FerryError('FERRY_E_BAD_SIZE', `"${input}" must be an absolute size here, not ${spec.kind === 'fill' ? '*' : spec.kind}`, {
      details: { input },
      hint: 'give a number of bytes with a unit, such as 20GiB',
    });
  }
  return spec.bytes;
}

/** 1536 → "1.5 KiB": for people, never for plans. */
export function formatBytes(n: bigint | number): string {
  let v = Number(n);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[i]}`;
}

export const MiB = 1024n * 1024n;
export const GiB = 1024n * MiB;

export function alignUp(n: bigint, a: bigint): bigint {
  return ((n + a - 1n) / a) * a;
}
export function alignDown(n: bigint, a: bigint): bigint {
  return (n / a) * a;
}

const DURATION_UNITS_MS = { s: 1000, m: 60_000, h: 3600_000, d: 86400_000 } as const;

/**
 * A duration such as 90, 30m, 12h or 7d (no unit: seconds) in milliseconds, refused when it is
 * not one or is longer than `max.ms` (`max.text` says what that limit is, for the message).
 * `name` is the field or option, kept in the error's details.
 */
export function parseDuration(s: string, name: string, max: { ms: number; text: string; hint: string }): number {
  const m = /^([0-9]+)\s*(s|m|h|d)?$/.exec(s.trim());
  if (!m || Number(m[1]) <= 0) {
    throw new FerryError('FERRY_E_BAD_VALUE', `"${s}" is not a duration`, { details: { [name]: s }, hint: 'write a positive number with s, m, h or d, such as 6h' });
  }
  const ms = Number(m[1]) * DURATION_UNITS_MS[(m[2] ?? 's') as keyof typeof DURATION_UNITS_MS];
  if (ms > max.ms) throw new FerryError('FERRY_E_BAD_VALUE', `"${s}" is longer than ${max.text}`, { details: { [name]: s, maxSeconds: max.ms / 1000 }, hint: max.hint });
  return ms;
}

/**
 * A byte rate such as 6MiB, 800K or 50MB (optionally followed by /s; no unit: bytes) in bytes per
 * second, by parseBytes's units; refused below `min` or above 100 GiB/s. `name` is the option, for
 * the message (`--torrent-seed-rate`).
 */
export function parseByteRate(input: string, name: string, min = 1024): number {
  const s = input.trim().replace(/\s*\/\s*s$/i, '');
  let bytes: bigint;
  try {
    bytes = parseBytes(s, 'B');
  } catch (e) {
    throw new FerryError('FERRY_E_BAD_VALUE', `${name} "${input.slice(0, 40)}" is not a rate in bytes per second`, { details: { [name]: input.slice(0, 40) }, hint: 'write a size per second such as 6MiB, 800K or 50MB (K, M, G: powers of two)' });
  }
  if (bytes < BigInt(min) || bytes > 100n * GiB) {
    throw new FerryError('FERRY_E_BAD_VALUE', `${name} "${input.slice(0, 40)}" is outside ${formatBytes(min)}/s to 100 GiB/s`, { details: { [name]: input.slice(0, 40) }, hint: `give at least ${formatBytes(min)} per second` });
  }
  return Number(bytes);
}
