/**
 * Space running out, on small tmpfs mounts: the server's data directory filled by two imports
 * that each passed the room check, and a target too small for what a small compressed layer
 * unpacks to. Every failure names the space that ran out, and nothing half-written stays.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../common/run.js';
import { runInstall } from '../../installer/install.js';
import { explainNoSpace } from '../../installer/room.js';
import { DataDir } from '../../server/context.js';
import { importImage } from '../../server/store/image-import.js';
import { listImages } from '../../server/store/images.js';
import { verifyImages } from '../../server/store/image-gc.js';
import { FerryServer } from './helpers/ferry-server.js';

let work: string;
const mounts: string[] = [];

async function tmpfs(name: string, size: string): Promise<string> {
  const d = path.join(work, name);
  fs.mkdirSync(d, { recursive: true });
  await run(['mount', '-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'ferry-test', d]);
  mounts.push(d);
  return d;
}

beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-noroom-'));
});
afterEach(async () => {
  for (const m of mounts.splice(0).reverse()) await run(['umount', '-l', m]).catch(() => {});
  fs.rmSync(work, { recursive: true, force: true });
});

describe('when space runs out', () => {
  it('two imports that each passed the room check: a failure is FERRY_E_NO_ROOM naming the data directory, and leaves nothing behind', async () => {
    const dataDir = path.join(await tmpfs('data', '12m'), 'ferry');
    const d = new DataDir(dataDir);
    const srcs = ['a', 'b'].map((n) => {
      const s = path.join(work, `src-${n}`);
      fs.mkdirSync(s);
      fs.writeFileSync(path.join(s, 'random'), randomBytes(7 << 20)); // incompressible
      return s;
    });
    const results = await Promise.allSettled(srcs.map((s, i) => importImage(d, `img${i}`, { dir: s, actor: 'test' })));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(failed.length).toBeGreaterThanOrEqual(1);
    for (const f of failed) {
      expect(f.reason.code, String(f.reason.stack)).toBe('FERRY_E_NO_ROOM');
      expect(f.reason.message).toContain(dataDir);
    }
    // What succeeded is whole; what failed left no blob, no temporary file and no lease.
    expect(listImages(d)).toHaveLength(2 - failed.length);
    for (const v of await verifyImages(d)) expect(v.ok).toBe(true);
    expect(d.blobs.list()).toHaveLength(2 - failed.length);
    expect(fs.readdirSync(path.join(dataDir, 'tmp'))).toEqual([]);
    d.close();
  });

  it('an image that unpacks to more than the target holds is refused before anything is extracted', async () => {
    const server = await FerryServer.start();
    try {
      const src = path.join(work, 'zeros');
      fs.mkdirSync(src);
      // 48 MiB of zeros: a layer of a few KiB that unpacks to 48 MiB.
      fs.writeFileSync(path.join(src, 'zeros'), Buffer.alloc(48 << 20));
      const img = await server.image('zeros', src);
      expect(img.layers[0].size).toBeLessThan(1 << 20);
      const armed = server.arm('z1', 'zeros');
      const root = await tmpfs('target', '16m');
      const outcome = await runInstall({ server: server.url, token: armed.token, root, yes: true, initramfs: false, console: () => {}, backoff: { baseMs: 10, maxMs: 50, giveUpAfterMs: 5000 } });
      expect(outcome.result.status).toBe('failed');
      expect(outcome.result.error).toMatchObject({ code: 'FERRY_E_TARGET_NO_ROOM', phase: 'layers' });
      expect(outcome.result.error?.message).toMatch(/unpacks to 48\.0 MiB, but the target's file systems have 1\d\.\d MiB free/);
      expect(fs.readdirSync(root)).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('ENOSPC in the middle of extraction names the full file system', async () => {
    const root = await tmpfs('full', '4m');
    fs.mkdirSync(path.join(root, 'var'));
    const sub = await tmpfs('full/var', '1m');
    let err: unknown;
    try {
      fs.writeFileSync(path.join(sub, 'fill'), Buffer.alloc(2 << 20));
    } catch (e) {
      err = e;
    }
    expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    const e = explainNoSpace(err, root) as { code: string; message: string };
    expect(e.code).toBe('FERRY_E_TARGET_NO_ROOM');
    expect(e.message).toContain(`full: ${sub}`);
    expect(e.message).not.toContain(`full: ${root},`);
    // Anything else passes through as it was.
    const other = new Error('EIO');
    expect(explainNoSpace(other, root)).toBe(other);
  });
});
