/**
 * `ferry media build`: resolve what the medium installs from the data directory (a node's image,
 * layout and inputs, or an image and a layout file), check it as arming would, then execute the
 * plan of server/media/plan.ts: GRUB's EFI binary, its FAT image by mtools, and one xorriso run
 * that writes the ISO from the blob store as it is. The ISO is written beside OUT and renamed
 * into place, so OUT is either the old file or the complete new one.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, mkdirSync, realpathSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { FerryError } from '../../common/errors.js';
import type { ImageManifest } from '../../common/protocol.js';
import { run } from '../../common/run.js';
import { armChecks, refuseProblems } from '../../layout/preflight.js';
import type { DataDir } from '../context.js';
import { getLayout, getNodeRow } from '../db/inventory.js';
import { mintMedium } from '../db/media.js';
import { getImage, manifestOf } from '../store/images.js';
import { withFerryKey } from '../ssh/authorize.js';
import { defaultLabel, DRIVER_SETS, efiCopyArgv, efiImageArgv, planMedium, type MediumInput, type MediumManifest } from './plan.js';

export interface MediaSource {
  node?: string;
  image?: string;
  /** Layout XML (from --layout FILE) and where it came from. */
  layoutXml?: string;
  layoutSource?: string;
  set?: Record<string, string>;
}

export interface MediaBuildOptions extends MediaSource {
  out: string;
  label?: string;
  unattended: boolean;
  server?: string;
  /** The boot environment: DIR/vmlinuz and DIR/initrd.img (make initrd writes build/boot). */
  bootDir: string;
  /** The boot environment's driver set: DIR/initrd-SET.img instead of the default initrd.img. */
  drivers?: string;
}


export interface MediaBuildResult {
  out: string;
  bytes: number;
  label: string;
  /** The medium's id on this server (ferry media list, ferry media revoke ID). */
  medium: number;
  image: string;
  node: string;
  layers: MediumManifest['layers'];
  seconds: number;
}

function j<T>(s: string | null | undefined, dflt: T): T {
  return s ? (JSON.parse(s) as T) : dflt;
}

/** What the medium installs, resolved and checked; nothing is written. */
export function resolveMedium(d: DataDir, s: MediaSource): Pick<MediumInput, 'node' | 'image' | 'layout' | 'inputs' | 'bootloader' | 'blobFiles'> {
  if (!!s.node === !!s.image) {
    throw new FerryError('FERRY_E_USAGE', 'give either --node NAME or --image REF --layout FILE', { hint: 'ferry media build --out FILE.iso --node NAME, or --image NAME[@VERSION] --layout FILE [--set KEY=VALUE]...' });
  }
  let image: ImageManifest;
  let layout: { xml: string; digest: string };
  let inputs: Record<string, string>;
  let node: MediumManifest['node'];
  let bootloader: MediumManifest['bootloader'] = 'auto';
  if (s.node) {
    const row = getNodeRow(d, s.node);
    if (!row.image) throw new FerryError('FERRY_E_NODE_NO_IMAGE', `node ${s.node} has no image to put on a medium`, { details: { node: s.node }, hint: `assign one: ferry node set ${s.node} --image IMG, or build with --image IMG --layout FILE` });
    const img = getImage(d, row.image);
    image = withFerryKey(d, manifestOf(img));
    if (s.layoutXml !== undefined) layout = { xml: s.layoutXml, digest: 'sha256:' + createHash('sha256').update(s.layoutXml).digest('hex') };
    else if (row.layout_digest) {
      const l = getLayout(d, row.layout_digest);
      layout = { xml: l.xml, digest: l.digest };
    } else throw new FerryError('FERRY_E_NODE_NO_LAYOUT', `node ${s.node} has no disk layout`, { details: { node: s.node }, hint: `give --layout FILE, or assign one: ferry node set ${s.node} --layout FILE` });
    inputs = { ...j<Record<string, string>>(img.inputs, {}), ...j<Record<string, string>>(row.inputs, {}), ...(s.set ?? {}) };
    const macs = (d.db.prepare('SELECT mac FROM node_macs WHERE node_id = ? ORDER BY mac').all(row.id) as { mac: string }[]).map((m) => m.mac);
    node = { name: row.name, macs, properties: j<Record<string, string>>(row.properties, {}) };
    if (row.bootloader) bootloader = row.bootloader as MediumManifest['bootloader'];
  } else {
    if (s.layoutXml === undefined) throw new FerryError('FERRY_E_USAGE', '--image needs --layout FILE (the disk layout the medium installs)', { hint: 'ferry media build --out FILE.iso --image NAME[@VERSION] --layout FILE [--set hostname=NAME]' });
    const img = getImage(d, s.image!);
    image = withFerryKey(d, manifestOf(img));
    layout = { xml: s.layoutXml, digest: 'sha256:' + createHash('sha256').update(s.layoutXml).digest('hex') };
    inputs = { ...j<Record<string, string>>(img.inputs, {}), ...(s.set ?? {}) };
    node = { name: inputs.hostname ?? image.name, macs: [], properties: {} };
  }
  // The checks arming runs (layout, its values, the node's inputs): a medium that cannot install is refused now.
  refuseProblems(`refusing to build a medium of ${image.name}@${image.version} for ${node.name}`, armChecks({ layoutXml: layout.xml, layoutSource: s.layoutSource ?? `layout ${layout.digest}`, inputs, nodeName: node.name }).problems);
  const blobFiles: Record<string, string> = {};
  for (const l of image.layers) {
    if (!d.blobs.has(l.digest)) {
      throw new FerryError('FERRY_E_BLOB_MISSING', `layer ${l.digest} of image ${image.name}@${image.version} is missing from the store`, { details: { digest: l.digest, image: `${image.name}@${image.version}` }, hint: 'run `ferry image verify`; re-import the image if its layers were removed' });
    }
    blobFiles[l.digest] = d.blobs.path(l.digest);
  }
  return { node, image, layout, inputs, bootloader, blobFiles };
}

export async function buildMedium(d: DataDir, o: MediaBuildOptions): Promise<MediaBuildResult> {
  const t0 = Date.now();
  const r = resolveMedium(d, o);
  if (o.drivers !== undefined && !(DRIVER_SETS as readonly string[]).includes(o.drivers)) {
    throw new FerryError('FERRY_E_USAGE', `--drivers ${o.drivers} is not a driver set: give ${DRIVER_SETS.join(' or ')}`, { details: { drivers: o.drivers }, hint: '--drivers virtual for VMs, --drivers generic for real hardware' });
  }
  const kernel = join(o.bootDir, 'vmlinuz');
  const initrd = join(o.bootDir, o.drivers ? `initrd-${o.drivers}.img` : 'initrd.img');
  for (const f of [kernel, initrd]) {
    if (!existsSync(f)) {
      const make = o.drivers ? `make initrd DRIVERS=${o.drivers}` : 'make initrd';
      throw new FerryError('FERRY_E_MEDIA_BOOTENV_MISSING', `the boot environment file ${f} does not exist`, { details: { path: f, bootDir: o.bootDir, drivers: o.drivers }, hint: `build the boot environment (${make}, which writes build/boot) and give --boot-dir DIR` });
    }
  }
  const out = resolve(o.out);
  if (!existsSync(dirname(out))) throw new FerryError('FERRY_E_SOURCE_MISSING', `the directory of --out ${out} does not exist`, { details: { path: out }, hint: 'create the directory first or give another --out' });
  const partial = `${out}.partial-${process.pid}`;
  const stage = mkdtempSync(join(tmpdir(), 'ferry-media-'));
  try {
    const label = o.label ?? defaultLabel(r.image);
    // Every medium gets a token of its own, for its install records only (server/db/media.ts): a
    // medium with --server posts them when the network reaches it; the records a medium keeps
    // on itself (a failed install on a stick) are imported with it (ferry media records).
    const minted = mintMedium(d, { label, imageDigest: r.image.digest, node: r.node.name, server: o.server ?? '', actor: 'cli' });
    const plan = planMedium({ ...r, out: partial, label, unattended: o.unattended, server: o.server, token: minted.token, kernel: realpathSync(kernel), initrd: realpathSync(initrd), stage });
    // realpath: a symlink (build/boot/initrd.img -> initrd-virtual.img) would go onto the ISO as a Rock Ridge link to nothing.
    for (const [p, content] of Object.entries(plan.files)) {
      mkdirSync(dirname(join(stage, p)), { recursive: true });
      writeFileSync(join(stage, p), content);
    }
    await run(plan.grubArgv, { timeoutMs: 120_000 });
    const efi = efiImageArgv(plan.efiImage, statSync(plan.efiBinary).size);
    writeFileSync(plan.efiImage, '');
    truncateSync(plan.efiImage, efi.sizeBytes);
    for (const argv of efi.argv) await run(argv, { timeoutMs: 60_000 });
    await run(efiCopyArgv(plan.efiImage, plan.efiBinary), { timeoutMs: 60_000 });
    await run(plan.xorrisoArgv, { timeoutMs: 30 * 60_000 });
    renameSync(partial, out);
    return {
      out,
      bytes: statSync(out).size,
      label: plan.manifest.label,
      medium: minted.id,
      image: `${r.image.name}@${r.image.version}`,
      node: r.node.name,
      layers: plan.manifest.layers,
      seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    rmSync(stage, { recursive: true, force: true });
    rmSync(partial, { force: true });
  }
}
