import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LayerRef } from '../../common/protocol.js';
import { applyLayer } from '../../installer/transport/index.js';
import { TargetRoot } from '../../layers/target.js';
import { droppingProxy } from '../harness/cutting-proxy.js';
import { blobServer } from './helpers/net.js';
import { describeTree, makeKitchenSink, sha256File, tarTree } from './helpers/trees.js';

let work: string;
beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-layers-'));
});
afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

async function store(src: string, compress: 'zstd' | 'gzip' | 'none' = 'zstd', files?: string[]): Promise<LayerRef> {
  const blobs = path.join(work, 'blobs');
  fs.mkdirSync(blobs, { recursive: true });
  const tmp = path.join(work, 'layer.tmp');
  await tarTree(src, tmp, compress, files);
  const digest = sha256File(tmp);
  fs.renameSync(tmp, path.join(blobs, digest));
  const mediaType = compress === 'zstd' ? 'application/vnd.oci.image.layer.v1.tar+zstd' : compress === 'gzip' ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar';
  return { digest, size: fs.statSync(path.join(blobs, digest)).size, mediaType };
}

describe('layer extraction', () => {
  for (const compress of ['zstd', 'gzip', 'none'] as const) {
    it(`keeps every attribute of every file kind (${compress})`, async () => {
      const src = path.join(work, 'src');
      fs.mkdirSync(src);
      await makeKitchenSink(src);
      const ref = await store(src, compress);
      const srv = await blobServer(path.join(work, 'blobs'));
      try {
        const dst = path.join(work, 'dst');
        fs.mkdirSync(dst);
        const stats = await applyLayer(ref, { baseUrl: srv.url, token: 'tok', target: new TargetRoot(dst) });
        expect(stats.devices).toBe(3);
        const a = await describeTree(src);
        const b = await describeTree(dst);
        expect(b.entries).toEqual(a.entries);
        expect(b.links).toEqual(a.links);
        expect(b.entries['var/lib/sparse.img'].sparse).toBe(true);
        expect(b.entries['usr/bin/ping'].xattrs).toContain('security.capability=0x0100000200200000000000000000000000000000');
      } finally {
        await srv.close();
      }
    });
  }
});

describe('layer download', () => {
  it('resumes with Range requests through a proxy that cuts every 1 MB', async () => {
    const src = path.join(work, 'src');
    fs.mkdirSync(src);
    // Incompressible data so the blob is several MB.
    const fd = fs.openSync('/dev/urandom', 'r');
    const buf = Buffer.alloc(6 * 1024 * 1024);
    fs.readSync(fd, buf, 0, buf.length, null);
    fs.closeSync(fd);
    fs.writeFileSync(path.join(src, 'noise'), buf);
    const ref = await store(src);
    const srv = await blobServer(path.join(work, 'blobs'));
    const proxy = await droppingProxy(srv.url, 1024 * 1024);
    try {
      const dst = path.join(work, 'dst');
      fs.mkdirSync(dst);
      const warnings: string[] = [];
      await applyLayer(ref, {
        baseUrl: proxy.url, token: 'tok', target: new TargetRoot(dst),
        backoff: { baseMs: 5, maxMs: 50, giveUpAfterMs: 10_000 },
        progress: (e) => { if (e.state === 'warning') warnings.push(e.message ?? ''); },
      });
      expect(fs.readFileSync(path.join(dst, 'noise')).equals(buf)).toBe(true);
      expect(proxy.drops).toBeGreaterThanOrEqual(5);
      expect(warnings.length).toBe(proxy.drops);
      expect(srv.requests.filter((r) => r.includes('bytes=')).length).toBe(proxy.drops);
    } finally {
      await proxy.close();
      await srv.close();
    }
  });

  it('resumes from a server without Range support by skipping what it already has', async () => {
    const src = path.join(work, 'src');
    fs.mkdirSync(src);
    const buf = Buffer.alloc(3 * 1024 * 1024);
    const fd = fs.openSync('/dev/urandom', 'r');
    fs.readSync(fd, buf, 0, buf.length, null);
    fs.closeSync(fd);
    fs.writeFileSync(path.join(src, 'noise'), buf);
    const ref = await store(src, 'gzip');
    const srv = await blobServer(path.join(work, 'blobs'), 'tok', { noRange: true });
    const proxy = await droppingProxy(srv.url, 1024 * 1024, { growing: true });
    try {
      const dst = path.join(work, 'dst');
      fs.mkdirSync(dst);
      await applyLayer(ref, { baseUrl: proxy.url, token: 'tok', target: new TargetRoot(dst), backoff: { baseMs: 5, maxMs: 20, giveUpAfterMs: 5000 } });
      expect(fs.readFileSync(path.join(dst, 'noise')).equals(buf)).toBe(true);
      expect(proxy.drops).toBeGreaterThanOrEqual(2);
      // Every retry asked for a range, got the whole blob and dropped what it had.
      expect(srv.requests.filter((r) => r.includes('bytes=')).length).toBe(proxy.drops);
    } finally {
      await proxy.close();
      await srv.close();
    }
  });

  it('fails with the layer, expected and actual digest when the blob is corrupted', async () => {
    const src = path.join(work, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'a'), 'a'.repeat(100000));
    const ref = await store(src);
    const blob = path.join(work, 'blobs', ref.digest);
    const bytes = fs.readFileSync(blob);
    bytes[bytes.length >> 1] ^= 0xff;
    fs.writeFileSync(blob, bytes);
    const srv = await blobServer(path.join(work, 'blobs'));
    try {
      const dst = path.join(work, 'dst');
      fs.mkdirSync(dst);
      const err = await applyLayer(ref, { baseUrl: srv.url, token: 'tok', target: new TargetRoot(dst), index: 2 }).catch((e) => e);
      expect(err.code).toBe('FERRY_E_LAYER_DIGEST');
      expect(err.details.expected).toBe(ref.digest);
      expect(err.details.actual).toBe(sha256File(blob));
      expect(err.details.layer).toBe(2);
      expect(err.message).toContain('layer 3');
    } finally {
      await srv.close();
    }
  });

  it('treats a 4xx as final and explains it', async () => {
    const srv = await blobServer(path.join(work), 'right');
    try {
      const dst = path.join(work, 'dst');
      fs.mkdirSync(dst);
      const ref: LayerRef = { digest: 'sha256:' + '0'.repeat(64), size: 10, mediaType: 'application/vnd.oci.image.layer.v1.tar' };
      const err = await applyLayer(ref, { baseUrl: srv.url, token: 'wrong', target: new TargetRoot(dst) }).catch((e) => e);
      expect(err.code).toBe('FERRY_E_LAYER_FETCH');
      expect(err.details.status).toBe(401);
      expect(err.hint).toMatch(/token/);
      expect(srv.requests.length).toBe(1);
    } finally {
      await srv.close();
    }
  });
});
