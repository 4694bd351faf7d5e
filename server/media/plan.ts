/**
 * Restore media, the plan (pure): what one hybrid ISO holds and the exact commands that write it.
 * `ferry media build` (server/media/build.ts) only executes this plan.
 *
 * The medium is one ISO 9660 file system that boots four ways:
 * - BIOS as a CD: El Torito entry 1, isolinux (Debian `isolinux`);
 * - BIOS as a stick (`dd`): isolinux's hybrid MBR (isohdpfx.bin), which chains the same isolinux;
 * - UEFI as a CD: El Torito entry 2, a FAT image (`efi.img`, made with mtools: no root, no loop
 *   mount, no vfat in the build host's kernel) holding GRUB as `EFI/BOOT/BOOTX64.EFI`;
 * - UEFI as a stick: the same FAT image appended as a GPT/MBR EFI system partition
 *   (`-isohybrid-gpt-basdat`), which the firmware finds by the removable path.
 *
 * Both loaders start the same kernel and initrd with `ferry.medium=LABEL`: the boot environment
 * finds its medium by this file-system label, never by a device name. GRUB finds the ISO the same
 * way (`search --label`), so the EFI image carries no paths of its own.
 *
 * The layers go in exactly as stored (DATA/blobs/sha256/HEX grafted to ferry/layers/sha256/HEX,
 * content-addressed, compressed as they are): the ISO is written by xorriso straight from the
 * blob store, nothing is unpacked or re-packed. ferry/medium.{0,1} say what to install: the node,
 * the image manifest (every layer's digest and size, which the installer checks before the first
 * disk write), the layout and the inputs.
 *
 * ferry/medium.0 and ferry/medium.1 are the medium's only node-specific files (the boot menus name
 * the image, not the node): two slots, each exactly MEDIUM_PART_BYTES long (a header with a
 * generation and a checksum, the JSON, then spaces; common/medium.ts). Build fills slot 0 and
 * leaves slot 1 empty; `ferry media customize` (server/media/customize.ts) writes the older slot
 * in place, in its extent, without touching any other byte of the ISO, and the installer reads the
 * newest valid one, so a crash mid-customize leaves the previous description. A description that
 * does not fit is refused (FERRY_E_MEDIA_PART_TOO_BIG), never truncated.
 */
import { FerryError } from '../../common/errors.js';
import type { ImageManifest } from '../../common/protocol.js';
import { emptyMediumSlot, encodeMediumSlot, MEDIUM_FORMAT, MEDIUM_SLOTS, RECORD_AREA_FILE, RECORD_SLOT_BYTES, RECORD_SLOTS, type MediumManifest } from '../../common/medium.js';
import { BASE_KERNEL_ARGS, DEFAULT_CONSOLE } from '../boot/ipxe.js';

export type { MediumManifest } from '../../common/medium.js';

/** Host paths of the bootloaders (Debian packages isolinux, syslinux-common, grub-efi-amd64-bin). */
export interface LoaderPaths {
  isolinuxBin: string;
  ldlinux: string;
  isohybridMbr: string;
  grubEfiDir: string;
}

export const DEBIAN_LOADERS: LoaderPaths = {
  isolinuxBin: '/usr/lib/ISOLINUX/isolinux.bin',
  ldlinux: '/usr/lib/syslinux/modules/bios/ldlinux.c32',
  isohybridMbr: '/usr/lib/ISOLINUX/isohdpfx.bin',
  grubEfiDir: '/usr/lib/grub/x86_64-efi',
};

export interface MediumInput {
  out: string;
  label: string;
  unattended: boolean;
  server?: string;
  /** The medium's token for posting install records (server/db/media.ts). */
  token?: string;
  node: MediumManifest['node'];
  image: ImageManifest;
  layout: { xml: string; digest: string };
  inputs: Record<string, string>;
  bootloader?: MediumManifest['bootloader'];
  /** Where each layer's blob is on this host (DATA/blobs/sha256/HEX), by digest. */
  blobFiles: Record<string, string>;
  kernel: string;
  initrd: string;
  /** A fresh directory for the small generated files (configs, the EFI image). */
  stage: string;
  loaders?: LoaderPaths;
}

export interface MediumPlan {
  manifest: MediumManifest;
  /** Generated files: path under `stage` → content. */
  files: Record<string, string | Buffer>;
  /** Commands before the EFI image is sized: GRUB's EFI binary. */
  grubArgv: string[];
  /** The ISO: one xorriso command, every file grafted from where it already is. */
  xorrisoArgv: string[];
  /** Where the EFI binary is written (stage-relative paths joined). */
  efiBinary: string;
  efiImage: string;
}

/** The boot environment's driver sets (initrd/drivers/): both carry usb_storage and uas for sticks. */
export const DRIVER_SETS = ['virtual', 'generic'] as const;

export { MEDIUM_PART_BYTES } from '../../common/medium.js';

/** The first slot's exact bytes (generation 1); the second slot starts empty (common/medium.ts). */
export function mediumPart(m: MediumManifest, generation = 1): Buffer {
  return encodeMediumSlot(m, generation);
}

/** GRUB's modules in the medium's EFI binary: find the ISO by label, read its grub.cfg, boot Linux. */
export const GRUB_EFI_MODULES = ['part_gpt', 'part_msdos', 'iso9660', 'search', 'search_label', 'configfile', 'normal', 'linux', 'efi_gop', 'echo', 'test'];

/** ISO 9660 volume ids are at most 32 characters; keep to what every loader's `search` matches. */
export const LABEL_RE = /^[A-Z0-9_-]{1,32}$/;

export function defaultLabel(image: { name: string; version: number }): string {
  return ('FERRY-' + `${image.name}-${image.version}`.toUpperCase().replace(/[^A-Z0-9_-]/g, '_')).slice(0, 32);
}

export function checkLabel(label: string): void {
  if (!LABEL_RE.test(label)) {
    throw new FerryError('FERRY_E_MEDIA_LABEL', `--label "${label}" is not a medium label: 1 to 32 of A-Z, 0-9, _ and -`, {
      details: { label },
      hint: 'give --label with upper-case letters, digits, _ and - only (the boot environment finds the medium by it), or leave it out for FERRY-IMAGE-VERSION',
    });
  }
}

/** Kernel arguments of the medium's boot entries. */
export function kernelArgs(label: string, unattended: boolean): string {
  // BASE_KERNEL_ARGS as on the network path: without no_timer_check a loaded TCG host's second boot of the vm test panicked (IO-APIC + timer doesn't work).
  return [`ferry.medium=${label}`, ...(unattended ? ['ferry.unattended=1'] : []), ...DEFAULT_CONSOLE, ...BASE_KERNEL_ARGS].join(' ');
}

function blobPath(digest: string): string {
  return `ferry/layers/sha256/${digest.slice('sha256:'.length)}`;
}

export function planMedium(i: MediumInput): MediumPlan {
  checkLabel(i.label);
  for (const l of i.image.layers) {
    if (!i.blobFiles[l.digest]) throw new FerryError('FERRY_E_BLOB_MISSING', `layer ${l.digest} of ${i.image.name}@${i.image.version} is missing from the store`, { details: { digest: l.digest }, hint: 'run `ferry image verify`; re-import the image if its layers were removed' });
  }
  const L = i.loaders ?? DEBIAN_LOADERS;
  const layers = i.image.layers.map((l) => ({ digest: l.digest, size: l.size, path: blobPath(l.digest) }));
  const manifest: MediumManifest = {
    format: MEDIUM_FORMAT,
    label: i.label,
    unattended: i.unattended,
    ...(i.server ? { server: i.server } : {}),
    ...(i.token ? { token: i.token } : {}),
    node: i.node,
    image: i.image,
    layout: i.layout,
    inputs: i.inputs,
    bootloader: i.bootloader ?? 'auto',
    layers,
  };
  const args = kernelArgs(i.label, i.unattended);
  // The image, not the node: the node's part is ferry/medium.{0,1} alone (customize rewrites them).
  const title = `Ferry restore: ${i.image.name}@${i.image.version}`;
  const files: Record<string, string | Buffer> = {
    'isolinux/isolinux.cfg': ['DEFAULT ferry', 'PROMPT 0', 'TIMEOUT 10', `SAY ${title}`, 'LABEL ferry', '  KERNEL /boot/vmlinuz', `  APPEND initrd=/boot/initrd.img ${args}`, ''].join('\n'),
    'boot/grub/grub.cfg': ['set timeout=1', 'set default=0', `menuentry "${title.replace(/"/g, "'")}" {`, `  linux /boot/vmlinuz ${args}`, '  initrd /boot/initrd.img', '}', ''].join('\n'),
    // Embedded in BOOTX64.EFI: find the ISO by its label, then read the medium's own grub.cfg.
    'efi-early.cfg': [`search --no-floppy --set=root --label ${i.label}`, 'set prefix=($root)/boot/grub', 'configfile ($root)/boot/grub/grub.cfg', ''].join('\n'),
    [MEDIUM_SLOTS[0]]: mediumPart(manifest),
    [MEDIUM_SLOTS[1]]: emptyMediumSlot(),
    // Blank: a failed install from a stick keeps its record here (common/medium-records.ts).
    [RECORD_AREA_FILE]: Buffer.alloc(RECORD_SLOTS * RECORD_SLOT_BYTES, 0x20),
    'ferry/manifest.json': JSON.stringify(i.image, null, 2) + '\n',
  };
  const st = (p: string) => `${i.stage}/${p}`;
  const efiBinary = st('BOOTX64.EFI');
  const efiImage = st('efi.img');
  // grub-mkimage with exactly the modules the loader uses (their dependencies come from
  // moddep.lst), the early config embedded: 0.5 MB in milliseconds, where grub-mkstandalone
  // packs every module into a memdisk (3.4 MB, about 2 s, most of a small medium's build).
  const grubArgv = [
    'grub-mkimage', '-O', 'x86_64-efi', '-d', L.grubEfiDir, '-o', efiBinary, '-p', '/boot/grub', '-c', st('efi-early.cfg'),
    ...GRUB_EFI_MODULES,
  ];
  const graft = (isoPath: string, host: string) => `${isoPath}=${host}`;
  const xorrisoArgv = [
    'xorriso', '-as', 'mkisofs',
    '-o', i.out,
    '-R', '-J', '-joliet-long', '-iso-level', '3',
    '-V', i.label,
    '-isohybrid-mbr', L.isohybridMbr,
    '-c', 'isolinux/boot.cat',
    '-b', 'isolinux/isolinux.bin', '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table',
    '-eltorito-alt-boot',
    '-e', 'efi.img', '-no-emul-boot', '-isohybrid-gpt-basdat',
    '-graft-points',
    graft('isolinux/isolinux.bin', L.isolinuxBin),
    graft('isolinux/ldlinux.c32', L.ldlinux),
    graft('efi.img', efiImage),
    graft('EFI/BOOT/BOOTX64.EFI', efiBinary),
    graft('boot/vmlinuz', i.kernel),
    graft('boot/initrd.img', i.initrd),
    ...Object.keys(files).filter((f) => f !== 'efi-early.cfg').map((f) => graft(f, st(f))),
    ...layers.map((l) => graft(l.path, i.blobFiles[l.digest])),
  ];
  return { manifest, files, grubArgv, xorrisoArgv, efiBinary, efiImage };
}

/**
 * The FAT image that holds GRUB's EFI binary (El Torito EFI entry and the stick's ESP), by
 * mtools: room for the binary plus 512 KiB, in 512-byte sectors, 1 head, 32 sectors a track.
 */
export function efiImageArgv(efiImage: string, efiBinarySize: number): { sizeBytes: number; argv: string[][] } {
  const kib = Math.ceil(efiBinarySize / 1024) + 512;
  const sizeBytes = kib * 1024;
  return {
    sizeBytes,
    argv: [
      ['mformat', '-i', efiImage, '-T', String(kib * 2), '-h', '1', '-s', '32', '-N', '46455252', '-v', 'EFIBOOT', '::'],
      ['mmd', '-i', efiImage, '::/EFI', '::/EFI/BOOT'],
    ],
  };
}

export function efiCopyArgv(efiImage: string, efiBinary: string): string[] {
  return ['mcopy', '-i', efiImage, efiBinary, '::/EFI/BOOT/BOOTX64.EFI'];
}
