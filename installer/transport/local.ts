/**
 * The local transport: a layer read from a mounted restore medium (or any directory holding one),
 * MEDIUM/ferry/layers/sha256/HEX, exactly as the server stores it. Like every transport it only
 * delivers bytes into the layer sink, which checks size and digest; the medium install also
 * verifies every layer before the first disk write (installer/medium.ts). There is no fallback:
 * a medium install has no server to fall back to.
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../../common/errors.js';
import { DIGEST_RE, type LayerRef } from '../../common/protocol.js';
import type { LayerTransport } from './types.js';

/** Where a layer is on a medium: by its digest only (the digest is checked, never a path from the medium). */
export function mediumLayerPath(medium: string, digest: string): string {
  if (!DIGEST_RE.test(digest)) {
    throw new FerryError('FERRY_E_BAD_DIGEST', `layer digest "${digest}" on the medium is not of the form sha256:<64 lowercase hex digits>`, { details: { digest }, hint: 'rebuild the medium with ferry media build' });
  }
  return join(medium, 'ferry', 'layers', 'sha256', digest.slice('sha256:'.length));
}

export function localTransport(medium: string): LayerTransport {
  return {
    kind: 'local',
    source: medium,
    async deliver(ref: LayerRef, sink, o) {
      const file = mediumLayerPath(medium, ref.digest);
      try {
        for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20, signal: o.signal })) await sink.write(chunk as Buffer);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
          throw new FerryError('FERRY_E_MEDIUM_LAYER_BAD', `layer ${(o.index ?? 0) + 1} ${ref.digest} is not on the medium ${medium}`, { details: { layer: o.index, digest: ref.digest, path: file }, hint: 'the medium is incomplete: rebuild it (ferry media build) and write it again' });
        }
        throw e;
      }
    },
  };
}
