/**
 * Building and reading layers. A layer is stored compressed (zstd by default, through
 * the real `zstd` tool) under the sha256 of the stored bytes; the sha256 of the
 * uncompressed tar (the OCI "diff id") is kept too, because it does not depend on the
 * compressor's version.
 */
import { createHash } from 'node:crypto';
import { createReadStream, openSync, readSync, closeSync, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FerryError } from '../../common/errors.js';
import { TarParser } from '../../layers/tar.js';
import { encodeIndex, type IndexEntry } from '../../layers/path-index.js';
import type { LayerMediaType, LayerRef } from '../../common/protocol.js';
import { spawnTool } from '../../common/run.js';
import type { BlobStore, Lease } from './blobs.js';

export type Compression = 'zstd' | 'none';

export const MEDIA_TYPES: Record<Compression, LayerMediaType> = {
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  none: 'application/vnd.oci.image.layer.v1.tar',
};

export interface BuiltLayer extends LayerRef {
  uncompressedSize: number;
  diffId: string;
  entries: number;
  /** The layer's entries (layers/path-index.ts), stored with its row by registerLayer. */
  index: Buffer;
}

/**
 * zstd level 3 on every core (-T0). zstd's multi-threaded output does not depend on the number of
 * workers (1.5.4 here: -T1, -T2 and -T0 give the same bytes), so the same input still gives the same
 * layer digest on every machine; only --single-thread would differ.
 */
export const ZSTD_ARGV = ['zstd', '-3', '-T0', '-q', '-c'];

/**
 * Store a tar stream as a layer. `check` sees every tar entry header (to refuse unsafe
 * names) while the bytes flow to the compressor; it runs on a copy of the stream.
 */
export async function storeLayer(store: BlobStore, tar: AsyncIterable<Buffer>, compression: Compression, o: { inspect?: boolean; lease?: Lease; onProgress?: (bytes: number, entries: number) => void } = {}): Promise<BuiltLayer> {
  const diffHash = createHash('sha256');
  let uncompressedSize = 0;
  // Every layer is parsed on the way in, for its index of entries (the server's knowledge of which
  // paths an image holds). Layers Ferry writes from a scanned tree have names that came from
  // readdir (no "..", never absolute): the names are not refused, only recorded.
  const inspector = new TarInspector(true, o.inspect !== false);
  async function* observed() {
    for await (const chunk of tar) {
      diffHash.update(chunk);
      uncompressedSize += chunk.length;
      await inspector.write(chunk);
      o.onProgress?.(uncompressedSize, inspector.count);
      yield chunk;
    }
    await inspector.end();
  }
  let blob;
  if (compression === 'none') {
    blob = await store.ingest(observed(), undefined, undefined, o.lease);
  } else {
    const z = spawnTool(ZSTD_ARGV, { quiet: true });
    const feeding = pipeline(Readable.from(observed()), z.child.stdin!);
    feeding.catch(() => {});
    // zstd ends its output cleanly even when its input was cut short by a refused
    // entry, so the blob is kept only once the producer and zstd both succeeded.
    const storing = store.ingest(z.child.stdout!, undefined, () => Promise.all([feeding, z.done]), o.lease);
    try {
      const [, b] = await Promise.all([feeding, storing, z.done]);
      blob = b;
    } catch (e) {
      z.child.kill('SIGKILL');
      // A full disk fails the write first; zstd then dies of SIGPIPE and the feeder of EPIPE.
      // The store's error says what ran out: report it rather than whichever came first.
      const settled = await Promise.allSettled([feeding, storing, z.done]);
      const noRoom = settled.find((r) => r.status === 'rejected' && (r.reason as FerryError)?.code === 'FERRY_E_NO_ROOM');
      throw noRoom ? (noRoom as PromiseRejectedResult).reason : e;
    }
  }
  return {
    digest: blob.digest,
    size: blob.size,
    mediaType: MEDIA_TYPES[compression],
    uncompressedSize,
    diffId: 'sha256:' + diffHash.digest('hex'),
    entries: inspector.count,
    index: encodeIndex(inspector.entries),
  };
}

/** Is a name inside a layer safe to extract under a root? */
export function unsafeLayerName(name: string): string | undefined {
  if (name.startsWith('/')) return 'it is absolute';
  if (name.split('/').includes('..')) return 'it contains a ".." component';
  if (name.includes('\0')) return 'it contains a NUL byte';
  return undefined;
}

/**
 * Follows a tar stream with the same reader the extractor uses (layers/tar.ts): counts
 * entries and refuses names that would land outside the target root, so a hostile tar
 * never enters the store, and what is checked here is what an install will read.
 * The reader is synchronous and bounds its meta headers, so a stream of random bytes or
 * a huge pax header ends in an error at once instead of waiting for more input.
 */
export class TarInspector {
  count = 0;
  /** Every entry's name and type, when kept (keepNames). */
  entries: IndexEntry[] = [];
  get names(): string[] {
    return this.entries.map((e) => e.path);
  }
  private failure: FerryError | undefined;
  private parser: TarParser;
  constructor(private keepNames = false, refuse = true) {
    this.parser = new TarParser({
      entry: (e) => {
        this.count++;
        const why = refuse ? unsafeLayerName(e.path) ?? (e.type === 'link' && e.linkname ? unsafeLayerName(e.linkname) : undefined) : undefined;
        if (why && !this.failure) {
          this.failure = new FerryError('FERRY_E_LAYER_UNSAFE_PATH', `the tar entry "${e.path}" is refused: ${why}`, {
            details: { name: e.path, linkname: e.linkname },
            hint: 'create the archive with relative names (tar -C ROOT -cf FILE .)',
          });
        }
        if (this.keepNames) this.entries.push({ path: e.path, type: e.type });
      },
      data: () => {},
      entryEnd: () => {},
    });
  }
  private guard(f: () => void): void {
    if (this.failure) throw this.failure;
    try {
      f();
    } catch (e) {
      throw (this.failure = invalid(e));
    }
    if (this.failure) throw this.failure;
  }
  async write(chunk: Buffer): Promise<void> {
    this.guard(() => this.parser.write(chunk));
  }
  async end(): Promise<void> {
    this.guard(() => this.parser.end());
  }
}

function invalid(e: unknown): FerryError {
  const reason = e instanceof FerryError ? e.message.replace(/^the layer is not a valid tar stream: /, '') : (e as Error).message;
  return new FerryError('FERRY_E_LAYER_INVALID', `the archive is not a valid tar stream: ${reason}`, {
    details: { reason },
    hint: 'give an uncompressed, gzip or zstd tar archive (tar -C ROOT -cf FILE .)',
  });
}

export type SourceCompression = 'gzip' | 'zstd' | 'none';

function compressionOf(b: Buffer): SourceCompression {
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/** Recognise a tar file's compression from its first bytes (not its name). */
export function sniffCompression(file: string): SourceCompression {
  const fd = openSync(file, 'r');
  const b = Buffer.alloc(4);
  let n = 0;
  try {
    n = readSync(fd, b, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  return compressionOf(b.subarray(0, n));
}

const DECOMPRESS: Record<Exclude<SourceCompression, 'none'>, string[]> = { gzip: ['gzip', '-dc'], zstd: ['zstd', '-dcq'] };

/**
 * The uncompressed tar bytes of a pipe (`--tar /dev/stdin`, a FIFO): read once, the
 * compression recognised from the first bytes, the rest fed to the decompressor.
 */
async function* readTarStream(file: string): AsyncGenerator<Buffer> {
  const src = createReadStream(file, { highWaterMark: 1 << 20 });
  const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  try {
    let head = Buffer.alloc(0);
    let ended = false;
    while (head.length < 4 && !ended) {
      const n = await it.next();
      if (n.done) ended = true;
      else head = Buffer.concat([head, n.value]);
    }
    async function* all(): AsyncGenerator<Buffer> {
      if (head.length) yield head;
      if (ended) return;
      for (;;) {
        const n = await it.next();
        if (n.done) return;
        yield n.value;
      }
    }
    const c = compressionOf(head);
    if (c === 'none') {
      yield* all();
      return;
    }
    const p = spawnTool(DECOMPRESS[c], { quiet: true });
    const feeding = pipeline(Readable.from(all()), p.child.stdin!);
    feeding.catch(() => {});
    try {
      for await (const chunk of p.child.stdout!) yield chunk as Buffer;
      await Promise.all([feeding, p.done]);
    } finally {
      if (p.child.exitCode === null) p.child.kill('SIGKILL');
    }
  } finally {
    src.destroy();
  }
}

/** The uncompressed tar bytes of a file, through gzip/zstd when needed. */
export async function* readTarFile(file: string): AsyncGenerator<Buffer> {
  if (!statSync(file).isFile()) {
    yield* readTarStream(file);
    return;
  }
  const c = sniffCompression(file);
  if (c === 'none') {
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) yield chunk as Buffer;
    return;
  }
  const p = spawnTool([...DECOMPRESS[c], '--', file], { quiet: true });
  p.child.stdin!.end();
  try {
    for await (const chunk of p.child.stdout!) yield chunk as Buffer;
    await p.done;
  } finally {
    if (p.child.exitCode === null) p.child.kill('SIGKILL');
  }
}

/** The uncompressed tar bytes of a stored layer. */
export async function* readLayer(store: BlobStore, layer: LayerRef): AsyncGenerator<Buffer> {
  const file = store.path(layer.digest);
  if (layer.mediaType.endsWith('+zstd') || layer.mediaType.endsWith('+gzip')) {
    yield* readTarFile(file);
  } else {
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) yield chunk as Buffer;
  }
}

/** Every entry name of a stored layer, in order. */
export async function layerNames(store: BlobStore, layer: LayerRef): Promise<string[]> {
  const ins = new TarInspector(true);
  for await (const chunk of readLayer(store, layer)) await ins.write(chunk);
  await ins.end();
  return ins.names;
}

/** A stored layer's entries, read from its blob once (for layers stored before the index existed). */
export async function layerEntries(store: BlobStore, layer: LayerRef): Promise<IndexEntry[]> {
  const ins = new TarInspector(true, false);
  for await (const chunk of readLayer(store, layer)) await ins.write(chunk);
  await ins.end();
  return ins.entries;
}
