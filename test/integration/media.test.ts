/**
 * Restore media on the host, no VM: `ferry media build` writes a hybrid ISO whose El Torito
 * catalogue has a BIOS and a UEFI entry and whose layers are the store's blobs byte for byte;
 * `ferry install --medium` installs from the medium's files and refuses a corrupted layer, naming
 * it, before a disk is written; `ferry media write` puts the ISO's exact bytes on a loop device and
 * refuses a mounted one. The kernel is Debian's (cached by the vm tier's kernel helper), the
 * initrd a small busybox one: what they boot is the vm tier's concern (test/vm/media.test.ts).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../common/run.js';
import { encodeMediumSlot } from '../../common/medium.js';
import { readMedium } from '../../installer/medium.js';
import { buildBusyboxInitrd } from '../vm/initrd.js';
import { ensureDebianKernel } from '../vm/kernel.js';
import { busyboxImage } from './helpers/images.js';

const ROOT = path.join(import.meta.dirname, '..', '..');
const FERRY = path.join(ROOT, 'build', 'ferry.mjs');
const LAYOUT = path.join(ROOT, 'layouts', 'bios-msdos.xml');
let work: string;
let data: string;
let bootDir: string;
let iso: string;
const loops: string[] = [];

const ferry = (args: string[], okCodes = [0]) => run(['node', FERRY, ...args, '--data', data], { timeoutMs: 120_000, okCodes });
const sha256 = (f: string) => 'sha256:' + createHash('sha256').update(fs.readFileSync(f)).digest('hex');

async function loop(sizeMiB: number): Promise<string> {
  const f = path.join(work, `disk-${loops.length}.img`);
  fs.writeFileSync(f, '');
  fs.truncateSync(f, sizeMiB << 20);
  const dev = (await run(['losetup', '-f', '--show', f])).stdout.trim();
  loops.push(dev);
  return dev;
}

async function extract(to: string): Promise<string> {
  await run(['xorriso', '-osirrox', 'on', '-indev', iso, '-extract', '/', to], { quiet: true });
  await run(['chmod', '-R', 'u+w', to]);
  return to;
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-media-'));
  data = path.join(work, 'data');
  bootDir = path.join(work, 'boot');
  fs.mkdirSync(bootDir);
  const kernel = await ensureDebianKernel();
  fs.copyFileSync(kernel.vmlinuz, path.join(bootDir, 'vmlinuz'));
  // As make initrd leaves it: initrd.img is a symlink to the driver set's initrd.
  await buildBusyboxInitrd({ kernel, out: path.join(bootDir, 'initrd-virtual.img') });
  fs.symlinkSync('initrd-virtual.img', path.join(bootDir, 'initrd.img'));
  const tree = path.join(work, 'tree');
  busyboxImage(tree);
  // Two layers: the medium holds each as stored.
  await ferry(['image', 'import', 'mini', '--dir', tree]);
  fs.writeFileSync(path.join(tree, 'etc', 'motd'), 'Second layer.\n');
  await ferry(['image', 'commit', 'mini', tree]);
  iso = path.join(work, 'mini.iso');
  const t0 = Date.now();
  await ferry(['media', 'build', '--out', iso, '--image', 'mini', '--layout', LAYOUT, '--set', 'hostname=restored', '--boot-dir', bootDir]);
  console.log(`media build: ${((Date.now() - t0) / 1000).toFixed(1)} s, ${fs.statSync(iso).size} bytes`);
}, 300_000);

afterAll(async () => {
  for (const l of loops) await run(['losetup', '-d', l]).catch(() => {});
  fs.rmSync(work, { recursive: true, force: true });
});

describe('ferry media build', () => {
  it('writes a hybrid ISO whose El Torito catalogue has a BIOS and a UEFI entry, with an MBR and GRUB at the removable path', async () => {
    const r = await run(['xorriso', '-indev', iso, '-report_el_torito', 'plain'], { quiet: true });
    const out = r.stdout + r.stderr;
    expect(out).toMatch(/El Torito boot img :\s+1\s+BIOS\s+y/);
    expect(out).toMatch(/El Torito boot img :\s+2\s+UEFI\s+y/);
    expect(out).toMatch(/MBR isohybrid/);
    expect(out).toMatch(/Volume id\s+:\s+'FERRY-MINI-2'/);
    // The hybrid MBR: the boot signature dd to a stick relies on.
    const mbr = Buffer.alloc(512);
    const fd = fs.openSync(iso, 'r');
    fs.readSync(fd, mbr, 0, 512, 0);
    fs.closeSync(fd);
    expect(mbr.readUInt16LE(510)).toBe(0xaa55);
    const x = await extract(path.join(work, 'x-catalogue'));
    expect(fs.existsSync(path.join(x, 'EFI/BOOT/BOOTX64.EFI'))).toBe(true);
    // The boot environment's files themselves, not the symlink initrd.img is in the boot directory.
    expect(fs.lstatSync(path.join(x, 'boot/initrd.img')).isFile()).toBe(true);
    expect(fs.readFileSync(path.join(x, 'boot/initrd.img')).equals(fs.readFileSync(path.join(bootDir, 'initrd-virtual.img')))).toBe(true);
    const efiImg = await run(['mdir', '-i', path.join(x, 'efi.img'), '::/EFI/BOOT'], { quiet: true });
    expect(efiImg.stdout).toMatch(/BOOTX64\s+EFI/);
    expect(fs.readFileSync(path.join(x, 'isolinux/isolinux.cfg'), 'utf8')).toContain('ferry.medium=FERRY-MINI-2');
    expect(fs.readFileSync(path.join(x, 'boot/grub/grub.cfg'), 'utf8')).toContain('ferry.medium=FERRY-MINI-2');
  });

  it('holds the layers exactly as stored: each file is its digest, byte for byte the blob', async () => {
    const x = await extract(path.join(work, 'x-layers'));
    const m = readMedium(x);
    const show = JSON.parse((await ferry(['image', 'show', 'mini', '--json'])).stdout);
    expect(m.image.digest).toBe(show.digest);
    expect(m.image.layers.map((l) => l.digest)).toEqual(show.layers.map((l: { digest: string }) => l.digest));
    expect(m.layers).toHaveLength(2);
    for (const l of m.layers) {
      const f = path.join(x, l.path);
      expect(sha256(f)).toBe(l.digest);
      expect(fs.statSync(f).size).toBe(l.size);
      expect(fs.readFileSync(f).equals(fs.readFileSync(path.join(data, 'blobs', 'sha256', l.digest.slice(7))))).toBe(true);
    }
    expect(m.inputs.hostname).toBe('restored');
    expect(m.layout.xml).toBe(fs.readFileSync(LAYOUT, 'utf8'));
  });

  it('refuses a label that the boot environment could not search for', async () => {
    const r = await ferry(['media', 'build', '--out', path.join(work, 'bad.iso'), '--image', 'mini', '--layout', LAYOUT, '--label', 'my medium', '--boot-dir', bootDir], [1]);
    expect(r.stderr).toContain('FERRY_E_MEDIA_LABEL');
    expect(fs.existsSync(path.join(work, 'bad.iso'))).toBe(false);
  });
});

describe('ferry install --medium', () => {
  it('installs the image from the medium into a directory', async () => {
    const x = await extract(path.join(work, 'x-install'));
    const dst = path.join(work, 'dst');
    fs.mkdirSync(dst);
    await run(['node', FERRY, 'install', '--medium', x, '--root', dst, '--no-initramfs'], { timeoutMs: 120_000 });
    expect(fs.readFileSync(path.join(dst, 'etc/motd'), 'utf8')).toBe('Second layer.\n');
    expect(fs.readFileSync(path.join(dst, 'etc/hostname'), 'utf8').trim()).toBe('restored');
  });

  it('refuses a medium with a corrupted layer, naming the layer, with the disk untouched', async () => {
    const x = await extract(path.join(work, 'x-bad'));
    const m = readMedium(x);
    const bad = path.join(x, m.layers[1].path);
    const b = fs.readFileSync(bad);
    b[Math.floor(b.length / 2)] ^= 0xff;
    fs.writeFileSync(bad, b);
    const dev = await loop(64);
    const before = (await run(['sha256sum', dev], { quiet: true })).stdout.split(' ')[0];
    const r = await run(['node', FERRY, 'install', '--medium', x, '--disk', dev, '--yes', '--no-initramfs'], { timeoutMs: 120_000, okCodes: [1] });
    expect(r.stderr).toContain('FERRY_E_MEDIUM_LAYER_BAD');
    expect(r.stderr).toContain(`layer 2 of 2 (${m.layers[1].digest})`);
    expect(r.stderr).toContain('stage "config"');
    expect((await run(['sha256sum', dev], { quiet: true })).stdout.split(' ')[0]).toBe(before);
  });
});

describe('ferry media customize', () => {
  const part = async (f: string, slot = 1) => {
    const r = await run(['xorriso', '-indev', f, '-find', `/ferry/medium.${slot}`, '-exec', 'report_lba', '--'], { quiet: true });
    const m = /File data lba:\s*\d+\s*,\s*(\d+)\s*,\s*\d+\s*,\s*(\d+)/.exec(r.stdout + r.stderr)!;
    return { offset: Number(m[1]) * 2048, size: Number(m[2]) };
  };

  it('rewrites only the node part in place; the medium then installs with the new hostname', async () => {
    const copy = path.join(work, 'custom.iso');
    fs.copyFileSync(iso, copy);
    const before = fs.readFileSync(copy);
    const t0 = Date.now();
    const r = await ferry(['media', 'customize', copy, '--set', 'hostname=other', '--set', 'role=db', '--json']);
    console.log(`media customize: ${((Date.now() - t0) / 1000).toFixed(2)} s with the CLI's start, ${JSON.parse(r.stdout).seconds} s its own work`);
    const after = fs.readFileSync(copy);
    expect(after.length).toBe(before.length);
    const { offset, size } = await part(copy);
    expect(size).toBe(256 * 1024);
    // The first customize writes slot 1 (build filled slot 0). Every byte outside that slot's
    // extent is as it was; inside, the new description.
    expect(JSON.parse(r.stdout)).toMatchObject({ slot: 'ferry/medium.1', generation: 2 });
    expect(after.subarray(0, offset).equals(before.subarray(0, offset))).toBe(true);
    expect(after.subarray(offset + size).equals(before.subarray(offset + size))).toBe(true);
    expect(after.subarray(offset, offset + size).equals(before.subarray(offset, offset + size))).toBe(false);
    const x = path.join(work, 'x-custom');
    await run(['xorriso', '-osirrox', 'on', '-indev', copy, '-extract', '/', x], { quiet: true });
    await run(['chmod', '-R', 'u+w', x]);
    const m = readMedium(x);
    expect([m.node.name, m.inputs.hostname, m.inputs.role]).toEqual(['other', 'other', 'db']);
    const dst = path.join(work, 'dst-custom');
    fs.mkdirSync(dst);
    await run(['node', FERRY, 'install', '--medium', x, '--root', dst, '--no-initramfs'], { timeoutMs: 120_000 });
    expect(fs.readFileSync(path.join(dst, 'etc/hostname'), 'utf8').trim()).toBe('other');
    expect(fs.readFileSync(path.join(dst, 'etc/motd'), 'utf8')).toBe('Second layer.\n');
  });

  it('refuses a part that does not fit, and a part arming refuses, with the ISO\'s bytes unchanged', async () => {
    const copy = path.join(work, 'custom-big.iso');
    fs.copyFileSync(iso, copy);
    const before = sha256(copy);
    const big = path.join(work, 'big-layout.xml');
    fs.writeFileSync(big, fs.readFileSync(LAYOUT, 'utf8').replace('</config>', `<!-- ${'x'.repeat(300 * 1024)} -->\n</config>`));
    const r = await ferry(['media', 'customize', copy, '--layout', big], [1]);
    expect(r.stderr).toContain('FERRY_E_MEDIA_PART_TOO_BIG');
    expect(sha256(copy)).toBe(before);
    const bad = await ferry(['media', 'customize', copy, '--set', 'hostname=not a name'], [1]);
    expect(bad.stderr).toMatch(/FERRY_E_\w+/);
    expect(sha256(copy)).toBe(before);
    expect((await ferry(['media', 'customize', copy, '--label', 'X'], [2])).stderr).toContain('fixed when the medium is built');
  });
  it('survives a torn write: the installer takes the newest slot whose checksum holds, and customize then rewrites the torn one', async () => {
    const copy = path.join(work, 'custom-torn.iso');
    fs.copyFileSync(iso, copy);
    const c = async (host: string) => JSON.parse((await ferry(['media', 'customize', copy, '--set', `hostname=${host}`, '--json'])).stdout);
    expect(await c('gen2')).toMatchObject({ slot: 'ferry/medium.1', generation: 2 });
    expect(await c('gen3')).toMatchObject({ slot: 'ferry/medium.0', generation: 3 });
    const [s0, s1] = [await part(copy, 0), await part(copy, 1)];
    const readBack = async (name: string) => {
      const x = path.join(work, name);
      await run(['xorriso', '-osirrox', 'on', '-indev', copy, '-extract', '/', x], { quiet: true });
      await run(['chmod', '-R', 'u+w', x]);
      return x;
    };
    // A crash in the middle of the next customize: it writes the older slot (1); only its first
    // half of the new bytes reached the medium (whole 512-byte sectors), the rest is what slot 1 held.
    const fd = fs.openSync(copy, 'r+');
    const next = encodeMediumSlot({ ...readMedium(await readBack('x-torn-0')), inputs: { hostname: 'gen4' } }, 4);
    const half = Math.floor(Number(/bytes=(\d+)/.exec(next.toString('latin1', 0, 200))![1]) / 2 / 512) * 512;
    expect(half).toBeGreaterThan(0);
    fs.writeSync(fd, next, 0, half, s1.offset);
    let x = await readBack('x-torn-1');
    expect(readMedium(x).inputs.hostname).toBe('gen3');
    const dst = path.join(work, 'dst-torn');
    fs.mkdirSync(dst);
    await run(['node', FERRY, 'install', '--medium', x, '--root', dst, '--no-initramfs'], { timeoutMs: 120_000 });
    expect(fs.readFileSync(path.join(dst, 'etc/hostname'), 'utf8').trim()).toBe('gen3');
    // The next customize writes the torn slot again (generation 4, from gen3's description).
    expect(await c('gen4')).toMatchObject({ slot: 'ferry/medium.1', generation: 4 });
    expect(readMedium(await readBack('x-torn-2')).inputs.hostname).toBe('gen4');
    // The newest slot garbled (a bad sector, a truncated write): the other one is read.
    fs.writeSync(fd, Buffer.alloc(4096, 0xee), 0, 4096, s1.offset + 2048);
    expect(readMedium(await readBack('x-torn-3')).inputs.hostname).toBe('gen3');
    // Both gone: refused, naming both slots.
    fs.writeSync(fd, Buffer.alloc(100, 0), 0, 100, s0.offset);
    fs.closeSync(fd);
    x = await readBack('x-torn-4');
    expect(() => readMedium(x)).toThrow(/ferry\/medium.0: no slot header; ferry\/medium.1: checksum mismatch/);
    const r = await run(['node', FERRY, 'install', '--medium', x, '--root', path.join(work, 'dst-torn-none'), '--no-initramfs'], { timeoutMs: 120_000, okCodes: [1, 2] });
    expect(r.stderr).toContain('FERRY_E_MEDIUM_INVALID');
  });
});

describe('ferry media build --drivers', () => {
  it('puts the chosen driver set\'s initrd on the medium, and names the missing one', async () => {
    const out = path.join(work, 'generic.iso');
    const missing = await ferry(['media', 'build', '--out', out, '--image', 'mini', '--layout', LAYOUT, '--drivers', 'generic', '--boot-dir', bootDir], [1]);
    expect(missing.stderr).toContain('FERRY_E_MEDIA_BOOTENV_MISSING');
    expect(missing.stderr).toContain('initrd-generic.img');
    expect(missing.stderr).toContain('make initrd DRIVERS=generic');
    // A stand-in generic initrd: what is checked is which file goes onto the medium.
    const generic = path.join(bootDir, 'initrd-generic.img');
    fs.writeFileSync(generic, Buffer.concat([fs.readFileSync(path.join(bootDir, 'initrd-virtual.img')), Buffer.from('generic')]));
    try {
      await ferry(['media', 'build', '--out', out, '--image', 'mini', '--layout', LAYOUT, '--drivers', 'generic', '--boot-dir', bootDir]);
      const x = path.join(work, 'x-generic');
      fs.mkdirSync(x);
      await run(['xorriso', '-osirrox', 'on', '-indev', out, '-extract', '/boot/initrd.img', path.join(x, 'initrd.img')], { quiet: true });
      expect(fs.readFileSync(path.join(x, 'initrd.img')).equals(fs.readFileSync(generic))).toBe(true);
    } finally {
      fs.rmSync(generic);
    }
    expect((await ferry(['media', 'build', '--out', out, '--image', 'mini', '--layout', LAYOUT, '--drivers', 'fast', '--boot-dir', bootDir], [1, 2])).stderr).toContain('is not a driver set');
  });
});

describe('ferry media write', () => {
  it('puts the ISO\'s exact bytes onto a loop device', async () => {
    const dev = await loop(Math.ceil(fs.statSync(iso).size / (1 << 20)) + 8);
    const t0 = Date.now();
    await ferry(['media', 'write', '--iso', iso, '--disk', dev, '--yes']);
    console.log(`media write: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const n = fs.statSync(iso).size;
    const fd = fs.openSync(dev, 'r');
    const got = Buffer.alloc(n);
    let off = 0;
    while (off < n) off += fs.readSync(fd, got, off, n - off, off);
    fs.closeSync(fd);
    expect(got.equals(fs.readFileSync(iso))).toBe(true);
  });

  it('refuses without --yes, and refuses a mounted disk with it unchanged', async () => {
    const dev = await loop(128);
    expect((await ferry(['media', 'write', '--iso', iso, '--disk', dev], [1])).stderr).toContain('FERRY_E_NOT_CONFIRMED');
    await run(['mkfs.ext4', '-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', dev]);
    const mnt = path.join(work, 'mnt');
    fs.mkdirSync(mnt);
    await run(['mount', dev, mnt]);
    try {
      fs.writeFileSync(path.join(mnt, 'keep'), 'mine\n');
      // A mounted ext4 rewrites its own metadata, so compare what the medium would overwrite
      // first: the 1024 bytes before ext4's superblock (zero on a fresh disk, the MBR on a medium).
      const head = () => {
        const b = Buffer.alloc(1024);
        const fd = fs.openSync(dev, 'r');
        fs.readSync(fd, b, 0, 1024, 0);
        fs.closeSync(fd);
        return b;
      };
      expect(head().every((x) => x === 0)).toBe(true);
      const r = await ferry(['media', 'write', '--iso', iso, '--disk', dev, '--yes'], [1]);
      expect(r.stderr).toContain('FERRY_E_DISK_MOUNTED');
      expect(head().every((x) => x === 0)).toBe(true);
      expect(fs.readFileSync(path.join(mnt, 'keep'), 'utf8')).toBe('mine\n');
    } finally {
      await run(['umount', mnt]);
    }
  });

  it('refuses a disk smaller than the medium', async () => {
    // Smaller than the ISO by a few MiB, whatever its size.
    const dev = await loop(Math.floor(fs.statSync(iso).size / (1 << 20)) - 4);
    const r = await ferry(['media', 'write', '--iso', iso, '--disk', dev, '--yes'], [1]);
    expect(r.stderr).toContain('FERRY_E_DISK_TOO_SMALL');
  });
});
