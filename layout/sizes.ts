/**
 * Size resolution: layout sizes (bytes, sectors, %, `*`, with min/max/weight) → exact sizes in
 * whole alignment units (1 MiB for partitions, one extent for logical volumes).
 *
 * Rules (docs/operator-guide.md, "Disk layouts"):
 * - A fixed size is rounded up to the unit (never smaller than asked); `%` is a share of the
 *   space the sequence lives in (the disk, or the volume group), rounded down.
 * - Every item wants its size. If the wants do not fit, items with a `min_size` below their size
 *   shrink, in proportion to their weights, never below their minimum; if even the minimums do
 *   not fit, resolution fails naming the bytes required and available.
 * - Space left over goes to the items that may grow: the one `*` item (up to its `max_size`) and
 *   items whose `max_size` exceeds their size, in proportion to their weights. What nobody may
 *   take stays unallocated.
 */
import type { SizeSpec } from '../common/units.js';
import type { AdaptiveSize } from './types.js';

export interface SizeContext {
  /** Bytes a `%` refers to. */
  percentBase: bigint;
  /** Logical sector size, for sizes in sectors. */
  sectorSize: bigint;
  /** The alignment unit in bytes. */
  unit: bigint;
}

/** One item of a sequence, in units. `max` undefined = unbounded. */
export interface Want {
  want: bigint;
  min: bigint;
  max: bigint | undefined;
  weight: number;
}

export function specBytes(spec: SizeSpec, ctx: SizeContext): bigint | undefined {
  switch (spec.kind) {
    case 'bytes':
      return spec.bytes;
    case 'sectors':
      return spec.sectors * ctx.sectorSize;
    case 'percent':
      // Percent with up to 4 decimals, exactly.
      return (ctx.percentBase * BigInt(Math.round(spec.percent * 10000))) / 1_000_000n;
    case 'fill':
      return undefined;
  }
}

const ceilDiv = (a: bigint, b: bigint) => (a + b - 1n) / b;

/** Turn an adaptive size into a want in units. */
export function toWant(s: AdaptiveSize, ctx: SizeContext): Want {
  const units = (spec: SizeSpec | undefined, round: 'up' | 'down'): bigint | undefined => {
    if (!spec) return undefined;
    const b = specBytes(spec, ctx);
    if (b === undefined) return undefined;
    // Percentages are shares: rounding them down keeps 50% + 50% inside the whole.
    return spec.kind === 'percent' || round === 'down' ? b / ctx.unit : ceilDiv(b, ctx.unit);
  };
  const weight = s.weight ?? 1;
  if (s.size.kind === 'fill') {
    const min = units(s.min, 'up') ?? 1n;
    const max = units(s.max, 'down');
    return { want: min, min, max: max === undefined ? undefined : max < min ? min : max, weight };
  }
  const want = units(s.size, 'up')!;
  let min = units(s.min, 'up') ?? want;
  if (min > want) min = want;
  let max = units(s.max, 'down') ?? want;
  if (max < want) max = want;
  return { want, min, max, weight };
}

export type Distribution = { ok: true; sizes: bigint[]; unused: bigint } | { ok: false; required: bigint; available: bigint };

/**
 * Share `change` units among `items` in proportion to weight, each limited by `room(i)`.
 * Water-filling: items that reach their limit drop out and the rest is shared again.
 * Remainders go one unit at a time in order, so the result is deterministic.
 */
function share(n: number, change: bigint, weight: (i: number) => number, room: (i: number) => bigint | undefined): bigint[] {
  const given = new Array<bigint>(n).fill(0n);
  let left = change;
  let open = [...Array(n).keys()].filter((i) => room(i) === undefined || room(i)! > 0n);
  while (left > 0n && open.length > 0) {
    // Weights as integers (4 decimals) so the arithmetic stays exact.
    const w = open.map((i) => BigInt(Math.round(weight(i) * 10000)));
    const total = w.reduce((a, b) => a + b, 0n);
    let spent = 0n;
    const next: number[] = [];
    open.forEach((i, k) => {
      let part = (left * w[k]) / total;
      const r = room(i);
      if (r !== undefined && part >= r - given[i]) part = r - given[i];
      given[i] += part;
      spent += part;
    });
    left -= spent;
    for (const i of open) if (room(i) === undefined || given[i] < room(i)!) next.push(i);
    if (spent === 0n) {
      // Shares rounded to zero: hand out single units in order.
      for (const i of next) {
        if (left === 0n) break;
        given[i] += 1n;
        left -= 1n;
      }
      open = next.filter((i) => room(i) === undefined || given[i] < room(i)!);
    } else open = next;
  }
  return given;
}

/** Resolve a sequence of wants into sizes that fit `available` units. */
export function distribute(items: Want[], available: bigint): Distribution {
  const total = items.reduce((a, x) => a + x.want, 0n);
  const sizes = items.map((x) => x.want);
  if (total > available) {
    const minTotal = items.reduce((a, x) => a + x.min, 0n);
    if (minTotal > available) return { ok: false, required: minTotal, available };
    const cut = share(items.length, total - available, (i) => items[i].weight, (i) => items[i].want - items[i].min);
    for (let i = 0; i < items.length; i++) sizes[i] -= cut[i];
    return { ok: true, sizes, unused: 0n };
  }
  const grow = share(items.length, available - total, (i) => items[i].weight, (i) => (items[i].max === undefined ? undefined : items[i].max! - items[i].want));
  let used = 0n;
  for (let i = 0; i < items.length; i++) {
    sizes[i] += grow[i];
    used += sizes[i];
  }
  return { ok: true, sizes, unused: available - used };
}
