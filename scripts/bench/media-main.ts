/**
 * Benchmark (issue 14), both comparisons in the same run, best of --rounds each:
 *  1. `ferry media build` (resolve and check, GRUB's EFI image, mtools, one xorriso run from the
 *     blob store) against plain `xorriso -as mkisofs` writing the same files with the same hybrid
 *     boot records into an ISO: goal <= 1.2. Also printed, for reference: xorriso of the big
 *     files alone (kernel, initrd, layers) with no boot records.
 *  2. An offline install from the medium (its files, extracted once: this host has no iso9660
 *     module to mount it) into a fresh --root, against the same install from a `ferry serve` on
 *     loopback (its own process, as for real nodes) into another fresh --root: goal <= 1.1.
 *
 *   scripts/bench/media [--mib 256] [--files 5000] [--rounds 3]
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { run } from '../../common/run.js';
import { runInstall } from '../../installer/install.js';
import { DataDir } from '../../server/context.js';
import { armDeployment } from '../../server/db/deployments.js';
import { addNode } from '../../server/db/inventory.js';
import { buildMedium } from '../../server/media/build.js';
import { getImage, manifestOf } from '../../server/store/images.js';
import { importImage } from '../../server/store/image-import.js';
import { startBenchServer } from './serve.js';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '256' }, files: { type: 'string', default: '5000' }, rounds: { type: 'string', default: '3' } } });
const MIB = Number(values.mib);
const FILES = Number(values.files);
const ROUNDS = Number(values.rounds);
if (!(MIB > 0 && MIB <= 4096) || !(FILES >= 1 && FILES <= 200_000) || !(ROUNDS >= 1 && ROUNDS <= 10)) throw new Error('--mib 1…4096, --files 1…200000, --rounds 1…10');
const LAYOUT = '<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="*" p_type="primary"/></disk><fsinfo line="1" real_dev="/dev/sda1" mp="/" fs="ext4"/></config>';
const BOOT = path.resolve('build', 'boot');

/** FILES files, half pseudo-random and half text, MIB in all. */
function makeTree(dir: string): void {
  let seed = createHash('sha256').update('ferry-bench-media').digest();
  const mean = (MIB << 20) / FILES;
  const text = Buffer.from('Lorem ipsum dolor sit amet, consectetur adipiscing elit; '.repeat(Math.ceil(mean / 50) + 1));
  for (let i = 0; i < FILES; i++) {
    const d = path.join(dir, `d${i % 100}`);
    if (i < 100) fs.mkdirSync(d, { recursive: true });
    const size = Math.round(mean * (0.1 + 1.8 * ((i * 7919) % 1000) / 1000));
    const rnd = Buffer.alloc(size >> 1);
    for (let o = 0; o < rnd.length; o += 32) {
      seed = createHash('sha256').update(seed).digest();
      seed.copy(rnd, o);
    }
    fs.writeFileSync(path.join(d, `f${i}`), Buffer.concat([rnd, text.subarray(0, size - rnd.length)]));
  }
  fs.mkdirSync(path.join(dir, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'etc', 'hostname'), 'bench\n');
}

const secs = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
const fmt = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(', ');

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-media-'));
  const dataDir = path.join(work, 'data');
  fs.mkdirSync(dataDir);
  const info = await startBenchServer(dataDir);
  try {
    const data = new DataDir(dataDir);
    const tree = path.join(work, 'tree');
    makeTree(tree);
    await importImage(data, 'bench', { dir: tree, actor: 'bench' });
    addNode(data, 'bench', { macs: ['02:00:00:be:0d:01'], image: 'bench', layoutXml: LAYOUT, inputs: { hostname: 'bench' } }, 'bench');
    const m = manifestOf(getImage(data, 'bench'));
    let bootDir = BOOT;
    if (!fs.existsSync(path.join(BOOT, 'initrd.img'))) {
      bootDir = path.join(work, 'boot');
      fs.mkdirSync(bootDir);
      fs.writeFileSync(path.join(bootDir, 'vmlinuz'), Buffer.alloc(8 << 20, 1));
      fs.writeFileSync(path.join(bootDir, 'initrd.img'), Buffer.alloc(60 << 20, 2));
      process.stderr.write(`no build/boot: stand-in kernel and initrd of the same sizes in ${bootDir}\n`);
    }
    const kernel = fs.realpathSync(path.join(bootDir, 'vmlinuz'));
    const initrd = fs.realpathSync(path.join(bootDir, 'initrd.img'));
    const iso = path.join(work, 'm.iso');
    const plainIso = path.join(work, 'plain.iso');
    // A first build (not timed) gives the medium's small files for the baseline and warms the page cache.
    await buildMedium(data, { out: iso, node: 'bench', unattended: true, bootDir });
    const medium = path.join(work, 'medium');
    await run(['xorriso', '-osirrox', 'on', '-indev', iso, '-extract', '/', medium], { quiet: true, timeoutMs: 600_000 });
    const layerGrafts = m.layers.map((l) => `ferry/layers/sha256/${l.digest.slice(7)}=${data.blobs.path(l.digest)}`);
    const small = ['isolinux/isolinux.bin', 'isolinux/ldlinux.c32', 'efi.img', 'EFI/BOOT/BOOTX64.EFI', 'isolinux/isolinux.cfg', 'boot/grub/grub.cfg', 'ferry/medium.0', 'ferry/medium.1', 'ferry/manifest.json'].map((f) => `${f}=${path.join(medium, f)}`);
    // The same files and the same hybrid boot records (BIOS El Torito + MBR, EFI El Torito + GPT ESP) as ferry media build writes.
    const sameIso = ['xorriso', '-as', 'mkisofs', '-o', plainIso, '-R', '-J', '-joliet-long', '-iso-level', '3', '-V', 'PLAIN', '-isohybrid-mbr', '/usr/lib/ISOLINUX/isohdpfx.bin', '-c', 'isolinux/boot.cat', '-b', 'isolinux/isolinux.bin', '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table', '-eltorito-alt-boot', '-e', 'efi.img', '-no-emul-boot', '-isohybrid-gpt-basdat', '-graft-points', ...small, `boot/vmlinuz=${kernel}`, `boot/initrd.img=${initrd}`, ...layerGrafts];
    // The big files only, no boot records: the least an ISO of them costs.
    const bare = ['xorriso', '-as', 'mkisofs', '-o', plainIso, '-R', '-J', '-joliet-long', '-iso-level', '3', '-V', 'PLAIN', '-graft-points', `boot/vmlinuz=${kernel}`, `boot/initrd.img=${initrd}`, ...layerGrafts];
    const b: number[] = [];
    const x: number[] = [];
    const xb: number[] = [];
    const timed = async (argv: string[]) => {
      fs.rmSync(plainIso, { force: true });
      const t0 = process.hrtime.bigint();
      await run(argv, { quiet: true, timeoutMs: 600_000 });
      return secs(t0);
    };
    const ferryBuild = async () => {
      fs.rmSync(iso, { force: true });
      const t0 = process.hrtime.bigint();
      await buildMedium(data, { out: iso, node: 'bench', unattended: true, bootDir });
      return secs(t0);
    };
    for (let i = 0; i < ROUNDS; i++) {
      // Alternate which goes first, so neither always meets the other's page cache.
      if (i % 2 === 0) {
        x.push(await timed(sameIso));
        b.push(await ferryBuild());
      } else {
        b.push(await ferryBuild());
        x.push(await timed(sameIso));
      }
      xb.push(await timed(bare));
    }
    const off: number[] = [];
    const net: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const r1 = path.join(work, `root-http-${i}`);
      const r2 = path.join(work, `root-medium-${i}`);
      fs.mkdirSync(r1);
      fs.mkdirSync(r2);
      const dep = armDeployment(data, 'bench', { actor: 'bench' });
      let t0 = process.hrtime.bigint();
      const h = await runInstall({ server: info.url, token: dep.token, root: r1, yes: true, initramfs: false, finish: 'stay', onNode: false, console: () => {} });
      net.push(secs(t0));
      if (h.result.status !== 'success') throw new Error(`the HTTP install failed: ${JSON.stringify(h.result.error)}`);
      t0 = process.hrtime.bigint();
      const o = await runInstall({ server: 'medium:' + medium, token: '', medium, root: r2, yes: true, initramfs: false, finish: 'stay', onNode: false, console: () => {} });
      off.push(secs(t0));
      if (o.result.status !== 'success') throw new Error(`the medium install failed: ${JSON.stringify(o.result.error)}`);
      fs.rmSync(r1, { recursive: true, force: true });
      fs.rmSync(r2, { recursive: true, force: true });
    }
    data.close();
    const best = (a: number[]) => Math.min(...a);
    const layerBytes = m.layers.reduce((s, l) => s + l.size, 0);
    console.log(`image: ${FILES} files, ${MIB} MiB (${m.layers.length} layer, ${(layerBytes / 2 ** 20).toFixed(0)} MiB stored); ISO ${(fs.statSync(iso).size / 2 ** 20).toFixed(0)} MiB; rounds: ${ROUNDS} (best of each)`);
    console.log(`xorriso, same files + boot  ${best(x).toFixed(2)} s   (runs: ${fmt(x)})`);
    console.log(`xorriso, big files only     ${best(xb).toFixed(2)} s   (runs: ${fmt(xb)}; no boot records, for reference)`);
    console.log(`ferry media build           ${best(b).toFixed(2)} s   (runs: ${fmt(b)})`);
    console.log(`ratio build/xorriso         ${(best(b) / best(x)).toFixed(2)}   (goal <= 1.2; against the bare ISO ${(best(b) / best(xb)).toFixed(2)})`);
    console.log(`install over HTTP loopback  ${best(net).toFixed(2)} s   (runs: ${fmt(net)})`);
    console.log(`install from the medium     ${best(off).toFixed(2)} s   (runs: ${fmt(off)})`);
    console.log(`ratio medium/HTTP           ${(best(off) / best(net)).toFixed(2)}   (goal <= 1.1)`);
  } finally {
    await info.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
