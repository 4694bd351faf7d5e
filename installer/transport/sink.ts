/**
 * Where every transport ends: the layer's bytes are hashed as they arrive and fed, in order, to
 * the shared decompress-parse-extract pipeline (layers/apply.ts). The layer counts as installed
 * only after `finish()`: exactly `ref.size` bytes arrived and their sha256 is `ref.digest`;
 * only then is the extraction completed (device nodes, xattrs, directory times).
 *
 * The digest is known only when the last byte has arrived, so a tampered or desynchronised
 * stream has already been partly extracted when it is detected. What was written stays inside
 * the target root (the extractor's rule), and applying the same layer again from a good source
 * (the HTTP fallback) rewrites every entry the layer has: files, links and directories are
 * replaced, whiteouts remove again. A bad stream can only leave behind names that the layer
 * does not hold, inside the root.
 */
import { createHash } from 'node:crypto';
import { FerryError } from '../../common/errors.js';
import type { LayerRef } from '../../common/protocol.js';
import { drained, extractPipeline, type Warn } from '../../layers/apply.js';
import type { ExtractStats } from '../../layers/extract.js';
import type { TargetRoot } from '../../layers/target.js';

export interface LayerSink {
  /** The next bytes of the blob, each exactly once; resolves when the extractor can take more. */
  write(chunk: Buffer): Promise<void>;
  /** Bytes written so far. */
  readonly received: number;
  /** Why the pipeline stopped taking bytes (a corrupt stream, a refused entry), if it did. */
  failure(): unknown;
  /** After the last byte: check the size and the digest, then complete the extraction. */
  finish(): Promise<ExtractStats>;
  /** Stop the pipeline (the transport failed); nothing more is extracted. */
  abort(): Promise<void>;
}

export function openLayerSink(ref: LayerRef, target: TargetRoot, label: string, o: { warn: Warn; index?: number; onBytes?: (bytes: number) => void }): LayerSink {
  const p = extractPipeline(ref, target, label, o.warn);
  const hash = createHash('sha256');
  let received = 0;
  let aborted = false;
  const abort = async () => {
    if (aborted) return;
    aborted = true;
    await p.abort();
  };
  return {
    get received() {
      return received;
    },
    failure: () => p.failure(),
    async write(chunk: Buffer) {
      if (received + chunk.length > ref.size) {
        throw new FerryError('FERRY_E_LAYER_SIZE', `${label} is longer than the ${ref.size} bytes the image says`, {
          details: { layer: o.index, digest: ref.digest, expected: ref.size, receivedAtLeast: received + chunk.length },
          hint: 'the bytes received do not match the image manifest; verify the store (ferry image verify) and re-import the image',
        });
      }
      received += chunk.length;
      hash.update(chunk);
      o.onBytes?.(received);
      // Keep hashing after a pipeline failure: a digest mismatch is the real cause of most failures.
      if (p.failure() || aborted) return;
      if (!p.input.write(chunk)) await drained(p.input, p.decompressed);
    },
    async finish() {
      if (received !== ref.size) {
        await abort();
        throw new FerryError('FERRY_E_LAYER_SIZE', `${label} ended after ${received} of its ${ref.size} bytes`, {
          details: { layer: o.index, digest: ref.digest, expected: ref.size, received },
          hint: 'the transfer stopped early; the installer falls back to HTTP for a fan-out transport, else arm the node again',
        });
      }
      const actual = 'sha256:' + hash.digest('hex');
      if (actual !== ref.digest) {
        await abort();
        throw new FerryError('FERRY_E_LAYER_DIGEST', `${label}: digest mismatch: expected ${ref.digest}, got ${actual}`, {
          details: { layer: o.index, expected: ref.digest, actual, size: ref.size },
          hint: 'the blob changed on the server or in transit; verify the store (ferry image verify) and re-import the image',
        });
      }
      return p.finish();
    },
    abort,
  };
}
