import { describe, expect, it } from 'vitest';
import { distribute, specBytes, toWant, type Want } from '../../layout/sizes.js';
import { parseSize, MiB } from '../../common/units.js';

const ctx = { percentBase: 1000n * MiB, sectorSize: 512n, unit: MiB };
/** max: null = unbounded (a `*` item). */
const w = (want: number, min = want, max: number | null = want, weight = 1): Want => ({ want: BigInt(want), min: BigInt(min), max: max === null ? undefined : BigInt(max), weight });

describe('size specs in bytes', () => {
  it('resolves bytes, sectors and percentages', () => {
    expect(specBytes(parseSize('500'), ctx)).toBe(500_000_000n);
    expect(specBytes(parseSize('2048s'), ctx)).toBe(1048576n);
    expect(specBytes(parseSize('2048s'), { ...ctx, sectorSize: 4096n })).toBe(8n * MiB);
    expect(specBytes(parseSize('25%'), ctx)).toBe(250n * MiB);
    expect(specBytes(parseSize('*'), ctx)).toBeUndefined();
  });
  it('rounds fixed sizes up to the unit, percentages down', () => {
    expect(toWant({ size: parseSize('500'), text: '500' }, ctx).want).toBe(477n); // 500 MB = 476.8 MiB
    expect(toWant({ size: parseSize('33.3%'), text: '' }, ctx).want).toBe(333n);
    expect(toWant({ size: parseSize('33.33%'), text: '' }, ctx).want).toBe(333n); // 333.3 MiB
    expect(toWant({ size: parseSize('*'), text: '*' }, ctx)).toEqual({ want: 1n, min: 1n, max: undefined, weight: 1 });
    expect(toWant({ size: parseSize('10GiB'), text: '', min: parseSize('2GiB'), max: parseSize('20GiB'), weight: 3 }, ctx)).toEqual({ want: 10240n, min: 2048n, max: 20480n, weight: 3 });
  });
});

describe('distribute', () => {
  it('gives fixed sizes and the rest to the fill item, wherever it stands', () => {
    expect(distribute([w(100), w(1, 1, null), w(200)], 1000n)).toEqual({ ok: true, sizes: [100n, 700n, 200n], unused: 0n });
  });
  it('leaves space unallocated when nothing may grow', () => {
    expect(distribute([w(100), w(200)], 1000n)).toEqual({ ok: true, sizes: [100n, 200n], unused: 700n });
  });
  it('fails naming the units required and available', () => {
    expect(distribute([w(600), w(500)], 1000n)).toEqual({ ok: false, required: 1100n, available: 1000n });
  });
  it('shrinks adaptive items by weight, never below their minimum', () => {
    const r = distribute([w(600, 100, 600, 2), w(600, 100, 600, 1), w(100)], 1000n);
    expect(r).toEqual({ ok: true, sizes: [400n, 500n, 100n], unused: 0n });
    const r2 = distribute([w(600, 500, 600, 9), w(600, 100, 600, 1), w(100)], 1000n);
    expect(r2).toEqual({ ok: true, sizes: [500n, 400n, 100n], unused: 0n });
  });
  it('fails when even the minimums do not fit', () => {
    expect(distribute([w(600, 500), w(600, 501)], 1000n)).toEqual({ ok: false, required: 1001n, available: 1000n });
  });
  it('grows items with a max_size and the fill item by weight', () => {
    const r = distribute([w(100, 100, 300, 1), w(1, 1, null, 3)], 1001n);
    expect(r).toEqual({ ok: true, sizes: [300n, 701n], unused: 0n });
    const r2 = distribute([w(100, 100, 1000, 1), w(1, 1, null, 1)], 101n);
    expect(r2).toEqual({ ok: true, sizes: [100n, 1n], unused: 0n });
  });
  it('caps the fill item at its max_size', () => {
    expect(distribute([w(100), w(1, 1, 50)], 1000n)).toEqual({ ok: true, sizes: [100n, 50n], unused: 850n });
  });
  it('hands out remainders deterministically', () => {
    expect(distribute([w(0, 0, null), w(0, 0, null), w(0, 0, null)], 10n)).toEqual({ ok: true, sizes: [4n, 3n, 3n], unused: 0n });
  });
});
