/**
 * A layer stream stopped in the middle of a file (a multicast receiver told to leave, a cut
 * transport) leaves no descriptor open under the target: an open one kept the installed root
 * busy, so the install's teardown could not unmount it (seen in the vm tier's pair).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LayerRef } from '../../common/protocol.js';
import { run } from '../../common/run.js';
import { extractPipeline } from '../../layers/apply.js';
import { TargetRoot } from '../../layers/target.js';

let work: string;
beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-abort-layer-'));
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

/** The descriptors of this process that point into `dir`. */
const openUnder = (dir: string) =>
  fs.readdirSync('/proc/self/fd').map((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return '';
    }
  }).filter((l) => l.startsWith(dir + '/'));

describe('a layer stream stopped mid-file', () => {
  it('aborted, or ended inside a file: the half-written file is closed', async () => {
    const src = path.join(work, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'big.bin'), Buffer.alloc(4 << 20, 7));
    const tar = path.join(work, 'layer.tar');
    await run(['tar', '--numeric-owner', '-C', src, '-cf', tar, '.']);
    const bytes = fs.readFileSync(tar);
    const ref: LayerRef = { digest: 'sha256:' + '0'.repeat(64), size: bytes.length, mediaType: 'application/vnd.oci.image.layer.v1.tar' };
    const half = bytes.subarray(0, bytes.length >> 1);
    for (const how of ['abort', 'finish'] as const) {
      const root = path.join(work, `root-${how}`);
      fs.mkdirSync(root);
      const p = extractPipeline(ref, new TargetRoot(root), 'the test layer', () => {});
      await new Promise<void>((res) => p.input.write(half, () => res()));
      await new Promise((r) => setTimeout(r, 50));
      expect(openUnder(root), `${how}: the file being written is open`).toHaveLength(1);
      if (how === 'abort') await p.abort();
      else await expect(p.finish()).rejects.toMatchObject({ code: 'FERRY_E_LAYER_CORRUPT' });
      expect(openUnder(root), `${how}: nothing left open under the target`).toEqual([]);
    }
  });
});
