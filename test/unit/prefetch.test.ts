/** When a layer may be fetched ahead (installer/transport/prefetch.ts prefetchFits): pure. */
import { describe, expect, it } from 'vitest';
import { prefetchFits } from '../../installer/transport/prefetch.js';

const layer = (size: number, uncompressedSize?: number) => ({ digest: 'sha256:' + '0'.repeat(64), size, uncompressedSize, mediaType: 'x' }) as never;

describe('fetching a layer ahead only where it fits', () => {
  it('needs the blob\'s size beside what the layers not yet extracted unpack to', () => {
    const next = layer(100, 300);
    const pending = [layer(50, 200), next];
    expect(prefetchFits(next, pending, 600)).toEqual({ fits: true, need: 600 });
    expect(prefetchFits(next, pending, 599)).toEqual({ fits: false, need: 600 });
  });

  it('counts a layer of an old manifest (no unpacked size) as four times its blob', () => {
    const next = layer(100);
    expect(prefetchFits(next, [layer(10), next], 1000)).toEqual({ fits: true, need: 100 + 40 + 400 });
    expect(prefetchFits(next, [layer(10), next], 539).fits).toBe(false);
  });
});
