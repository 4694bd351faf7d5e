/**
 * Benchmark: install a 1 GiB, ~50,000-file image from the loopback server onto a fresh loop-device
 * ext4, and in the same run `curl | zstd -dc | tar -x` of the same blob into an identical fresh
 * file system. Prints both times (each including the final sync) and the ratio (goal ≤ 1.1).
 * Run with scripts/bench/apply [--files N] [--mib M] [--rounds R].
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { run } from '../../common/run.js';
import { DataDir } from '../../server/context.js';
import { importImage } from '../../server/store/image-import.js';
import { findImage, getImage, manifestOf } from '../../server/store/images.js';
import { addNode } from '../../server/db/inventory.js';
import { armDeployment } from '../../server/db/deployments.js';
import { runInstall } from '../../installer/install.js';
import { fileURLToPath } from 'node:url';
import { startBenchServer } from './serve.js';

const { values } = parseArgs({ options: { files: { type: 'string', default: '50000' }, mib: { type: 'string', default: '1024' }, rounds: { type: 'string', default: '1' } } });
const FILES = Number(values.files);
const BYTES = Number(values.mib) * 1024 * 1024;
const ROUNDS = Number(values.rounds);
const cache = path.join(process.env.FERRY_CACHE || '/var/cache/ferry', 'installer', `bench-${FILES}-${values.mib}`);

/** A deterministic tree: FILES files in 500 directories, sizes spread around the mean, half-compressible content. */
function makeTree(dir: string): void {
  const tmp = dir + '.tmp';
  fs.rmSync(tmp, { recursive: true, force: true });
  const mean = BYTES / FILES;
  let seed = createHash('sha256').update('ferry-bench').digest();
  const block = Buffer.alloc(1 << 20);
  const refill = () => {
    for (let o = 0; o < block.length; o += 32) {
      seed = createHash('sha256').update(seed).digest();
      seed.copy(block, o);
    }
  };
  refill();
  const text = Buffer.from('Lorem ipsum dolor sit amet, consectetur adipiscing elit; '.repeat(20000));
  let pos = 0;
  for (let i = 0; i < FILES; i++) {
    const d = path.join(tmp, `d${String(i % 500).padStart(3, '0')}`, `s${i % 7}`);
    if (i < 3500) fs.mkdirSync(d, { recursive: true });
    // Sizes from 0.1× to 1.9× the mean, a few large ones.
    const size = Math.round(mean * (0.1 + 1.8 * ((i * 7919) % 1000) / 1000));
    const half = size >> 1;
    if (pos + half > block.length) {
      refill();
      pos = 0;
    }
    const data = Buffer.concat([block.subarray(pos, pos + half), text.subarray(0, size - half)]);
    pos += half;
    fs.writeFileSync(path.join(d, `f${i}.dat`), data);
  }
  fs.renameSync(tmp, dir);
}

async function freshFs(tag: string, work: string): Promise<{ loop: string; mnt: string }> {
  const file = path.join(work, `${tag}.img`);
  fs.writeFileSync(file, '');
  fs.truncateSync(file, BYTES * 2 + (512 << 20));
  const loop = (await run(['losetup', '-f', '--show', file])).stdout.trim();
  await run(['mkfs.ext4', '-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', loop]);
  const mnt = path.join(work, tag);
  fs.mkdirSync(mnt);
  await run(['mount', loop, mnt]);
  return { loop, mnt };
}

async function release(f: { loop: string; mnt: string }): Promise<void> {
  await run(['umount', f.mnt]).catch(() => {});
  await run(['losetup', '-d', f.loop]).catch(() => {});
}

async function main(): Promise<void> {
  fs.mkdirSync(cache, { recursive: true });
  const tree = path.join(cache, 'tree');
  if (!fs.existsSync(tree)) {
    process.stderr.write(`making the ${FILES}-file, ${values.mib} MiB tree in ${tree}…\n`);
    makeTree(tree);
  }
  const dataDir = path.join(cache, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const srv = await startBenchServer(dataDir);
  const data = new DataDir(dataDir);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-apply-'));
  const mounted: Array<{ loop: string; mnt: string }> = [];
  try {
    if (!findImage(data, 'bench')) {
      process.stderr.write('importing the tree as image "bench" (the server builds the layer)…\n');
      await importImage(data, 'bench', { dir: tree, actor: 'bench' });
      addNode(data, 'bench', { macs: ['02:00:00:be:0c:01'], image: 'bench', layoutXml: '<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="*" p_type="primary"/></disk><fsinfo line="1" real_dev="/dev/sda1" mp="/" fs="ext4"/></config>' }, 'bench');
    }
    const layer = manifestOf(getImage(data, 'bench')).layers[0];
    const blob = data.blobs.path(layer.digest);
    const entries = FILES + 3500 / 7 * 8;
    process.stderr.write(`layer ${layer.digest}: ${(layer.size / 2 ** 20).toFixed(0)} MiB stored, ${((layer.uncompressedSize ?? 0) / 2 ** 20).toFixed(0)} MiB tar, ~${entries} entries\n`);
    // Both contenders read the blob from the page cache.
    await run(['cat', blob], { maxBuffer: 1024, quiet: true });
    const results: Array<{ ferry: number; baseline: number }> = [];
    for (let r = 0; r < ROUNDS; r++) {
      const a = await freshFs(`ferry${r}`, work);
      mounted.push(a);
      const b = await freshFs(`base${r}`, work);
      mounted.push(b);
      await run(['sync']);
      const dep = armDeployment(data, 'bench', { actor: 'bench' });
      let t0 = process.hrtime.bigint();
      const stages: string[] = [];
      const outcome = await runInstall({
        server: srv.url, token: dep.token, root: a.mnt, yes: true, initramfs: false, console: () => {},
        onEvent: (e) => { if (e.state === 'end' && !e.object) stages.push(`${e.phase} ${e.message}`); },
      });
      const tInstall = Number(process.hrtime.bigint() - t0) / 1e9;
      await run(['sync']);
      const ferry = Number(process.hrtime.bigint() - t0) / 1e9;
      if (outcome.result.status !== 'success') throw new Error(`ferry install failed: ${JSON.stringify(outcome.result.error)}`);
      const url = `${srv.url}/blobs/${layer.digest}`;
      t0 = process.hrtime.bigint();
      await run(['bash', '-c', 'set -o pipefail; curl -sSf -H "Authorization: Bearer $1" "$2" | zstd -dc | tar -x -C "$3" && sync', 'sh', srv.adminToken, url, b.mnt], { env: {} });
      const baseline = Number(process.hrtime.bigint() - t0) / 1e9;
      results.push({ ferry, baseline });
      process.stderr.write(`ferry stages: ${stages.join(', ')}; install ${tInstall.toFixed(2)} s + sync ${(ferry - tInstall).toFixed(2)} s\n`);
      const count = (await run(['sh', '-c', 'find "$1" -type f | wc -l', 'sh', a.mnt])).stdout.trim();
      const countB = (await run(['sh', '-c', 'find "$1" -type f | wc -l', 'sh', b.mnt])).stdout.trim();
      process.stdout.write(`round ${r + 1}: ferry install ${ferry.toFixed(2)} s (${count} files), curl | zstd -dc | tar -x ${baseline.toFixed(2)} s (${countB} files), ratio ${(ferry / baseline).toFixed(2)}\n`);
      await release(a);
      await release(b);
      mounted.length = 0;
    }
    const f = results.reduce((s, x) => s + x.ferry, 0) / results.length;
    const b = results.reduce((s, x) => s + x.baseline, 0) / results.length;
    process.stdout.write(`apply: ferry ${f.toFixed(2)} s, baseline ${b.toFixed(2)} s, ratio ${(f / b).toFixed(2)} (goal ≤ 1.10)\n`);
  } finally {
    for (const m of mounted) await release(m);
    data.close();
    await srv.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : e}\n`);
  process.exit(1);
});
