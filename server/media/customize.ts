/**
 * `ferry media customize FILE.iso`: give an existing medium another node's part (name, inputs,
 * layout, bootloader, server URL) in place, so one medium per image serves many machines.
 *
 * The node's part is two slots, ferry/medium.0 and .1, which `ferry media build` writes at a
 * fixed size (MEDIUM_PART_BYTES; the format in common/medium.ts). xorriso reports where their data
 * is in the ISO (start block and size); the new description, with the next generation and its
 * checksum, padded to the same size, is written over the older slot's bytes and nothing else, then
 * fsynced: the ISO's directory records, boot catalogue, partition tables, layers and the newest
 * slot stay as they are. A crash mid-write leaves a torn older slot, which the installer skips
 * for the intact newer one (the previous description), and the next customize writes it again. Everything is checked before that one write (the arm-time checks on the new part,
 * the same image, room in the reserved extent): a part that does not fit is FERRY_E_MEDIA_PART_TOO_BIG
 * and the ISO's bytes are unchanged.
 */
import { closeSync, fsyncSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { FerryError } from '../../common/errors.js';
import { encodeMediumSlot, MEDIUM_FILE, MEDIUM_FORMAT, MEDIUM_PART_BYTES, MEDIUM_SLOTS, pickMediumSlot, type MediumManifest } from '../../common/medium.js';
import { run } from '../../common/run.js';
import { armChecks, refuseProblems } from '../../layout/preflight.js';
import type { DataDir } from '../context.js';
import { mintMediumToken } from '../db/media.js';
import { resolveMedium } from './build.js';

const BLOCK = 2048;

export interface MediaCustomizeOptions {
  iso: string;
  /** Take the node's part from this inventory node (its image must be the medium's). */
  node?: string;
  /** Inputs to set on top of the medium's (or the node's). */
  set?: Record<string, string>;
  /** A new layout (XML) and where it came from. */
  layoutXml?: string;
  layoutSource?: string;
  /** Report to this server ('' removes it). */
  server?: string;
}

export interface MediaCustomizeResult {
  iso: string;
  node: string;
  image: string;
  /** The slot written (the older one), its new generation, its byte offset in the ISO and its fixed size. */
  slot: string;
  generation: number;
  offset: number;
  bytes: number;
  seconds: number;
}

/** Where each slot's data (ferry/medium.0 and .1) is in the ISO (xorriso -find … -exec report_lba). */
export async function mediumSlotExtents(iso: string): Promise<{ offset: number; size: number }[]> {
  // A stick's device: xorriso takes it only as "stdio:" (it is no optical drive).
  const indev = statSync(iso).isBlockDevice() ? `stdio:${iso}` : iso;
  const r = await run(['xorriso', '-indev', indev, '-find', '/ferry', '-name', 'medium.*', '-exec', 'report_lba', '--'], { timeoutMs: 60_000, quiet: true, okCodes: [0, 1, 5, 32] });
  const out = r.stdout + r.stderr;
  return MEDIUM_SLOTS.map((slot) => {
    const m = new RegExp(`File data lba:\\s*\\d+\\s*,\\s*(\\d+)\\s*,\\s*(\\d+)\\s*,\\s*(\\d+)\\s*,\\s*'/${slot.replace('.', '\\.')}'`).exec(out);
    if (!m) {
      throw new FerryError('FERRY_E_MEDIUM_INVALID', `${iso} is not a restore medium of this version: it has no ${slot}`, { details: { path: iso, slot }, hint: 'give an ISO made by ferry media build (rebuild an older medium)' });
    }
    const [lba, blocks, size] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (blocks !== Math.ceil(size / BLOCK)) {
      // Data split over several extents (or shared oddly): not the one contiguous region build writes.
      throw new FerryError('FERRY_E_MEDIA_NOT_CUSTOMIZABLE', `${slot} in ${iso} is not one contiguous extent (${blocks} blocks for ${size} bytes)`, { details: { path: iso, lba, blocks, size }, hint: 'rebuild the medium with ferry media build' });
    }
    if (size !== MEDIUM_PART_BYTES) {
      throw new FerryError('FERRY_E_MEDIA_NOT_CUSTOMIZABLE', `${slot} in ${iso} is ${size} bytes, not the ${MEDIUM_PART_BYTES} a customizable medium reserves`, { details: { path: iso, size, expected: MEDIUM_PART_BYTES }, hint: 'rebuild the medium with this version of ferry media build' });
    }
    return { offset: lba * BLOCK, size };
  });
}

function readAt(fd: number, offset: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  let got = 0;
  while (got < size) {
    const n = readSync(fd, b, got, size - got, offset + got);
    if (n === 0) break;
    got += n;
  }
  return b.subarray(0, got);
}

const digestOf = (xml: string) => 'sha256:' + createHash('sha256').update(xml).digest('hex');

/** The medium's new description: the old one with the node's part replaced, checked as arming would. */
export function customizedManifest(d: DataDir | undefined, old: MediumManifest, o: MediaCustomizeOptions): MediumManifest {
  const m: MediumManifest = { ...old };
  if (o.node) {
    if (!d) throw new FerryError('FERRY_E_USAGE', '--node needs the data directory (--data DIR)', { hint: 'give --data DIR of the server that knows the node' });
    const r = resolveMedium(d, { node: o.node, layoutXml: o.layoutXml, layoutSource: o.layoutSource, set: o.set });
    if (r.image.digest !== old.image.digest) {
      throw new FerryError('FERRY_E_MEDIA_IMAGE_MISMATCH', `node ${o.node} installs ${r.image.name}@${r.image.version}; the medium holds the layers of ${old.image.name}@${old.image.version}`, {
        details: { node: o.node, nodeImage: `${r.image.name}@${r.image.version}`, mediumImage: `${old.image.name}@${old.image.version}` },
        hint: `build a medium of the node's image (ferry media build --node ${o.node}), or set the node's image to the medium's`,
      });
    }
    Object.assign(m, { node: r.node, layout: r.layout, inputs: r.inputs, bootloader: r.bootloader ?? 'auto' });
  } else {
    if (o.layoutXml !== undefined) m.layout = { xml: o.layoutXml, digest: digestOf(o.layoutXml) };
    if (o.set) {
      m.inputs = { ...old.inputs, ...o.set };
      // A medium built from --image names its node after the hostname (build's rule): keep that.
      if (o.set.hostname !== undefined && old.node.macs.length === 0 && old.node.name === (old.inputs.hostname ?? old.image.name)) m.node = { ...old.node, name: o.set.hostname };
    }
  }
  if (o.server !== undefined) {
    // A server (a new one, or the same one after `ferry media revoke`) gets a fresh token:
    // customizeMedium mints it. Removing the server ('') keeps the token (records kept on the medium).
    if (o.server !== '') delete m.token;
    if (o.server === '') delete m.server;
    else m.server = o.server;
  }
  refuseProblems(`refusing to customize the medium of ${m.image.name}@${m.image.version} for ${m.node.name}`, armChecks({ layoutXml: m.layout.xml, layoutSource: o.layoutSource ?? `layout ${m.layout.digest}`, inputs: m.inputs, nodeName: m.node.name }).problems);
  return m;
}

export async function customizeMedium(d: DataDir | undefined, o: MediaCustomizeOptions): Promise<MediaCustomizeResult> {
  const t0 = Date.now();
  if (!o.node && !o.set && o.layoutXml === undefined && o.server === undefined) {
    throw new FerryError('FERRY_E_USAGE', 'nothing to customize: give --node NAME, or --set KEY=VALUE, --layout FILE or --server URL', { hint: 'ferry media customize FILE.iso --set hostname=web8' });
  }
  try {
    statSync(o.iso);
  } catch (e) {
    throw new FerryError('FERRY_E_SOURCE_MISSING', `cannot read the medium ${o.iso}: ${(e as Error).message}`, { details: { path: o.iso }, hint: 'give an ISO made by ferry media build' });
  }
  const ext = await mediumSlotExtents(o.iso);
  const fd = openSync(o.iso, 'r+');
  try {
    // The newest valid slot is the medium's description now; the other one is written.
    const p = pickMediumSlot(ext.map((e) => readAt(fd, e.offset, e.size)));
    if (!p.ok) {
      throw new FerryError('FERRY_E_MEDIUM_INVALID', `${MEDIUM_FILE} in ${o.iso}: no readable description (${p.problems.join('; ')})`, { details: { path: o.iso, problems: p.problems }, hint: 'rebuild the medium with ferry media build' });
    }
    const old = p.manifest;
    if (old?.format !== MEDIUM_FORMAT || !old.image || !old.node) {
      throw new FerryError('FERRY_E_MEDIUM_INVALID', `${MEDIUM_FILE} in ${o.iso} is not a ${MEDIUM_FORMAT} description`, { details: { path: o.iso }, hint: 'rebuild the medium with this version of ferry media build' });
    }
    const m = customizedManifest(d, old, o);
    if (o.server && !m.token) {
      if (!d) throw new FerryError('FERRY_E_USAGE', '--server needs the data directory of that server (--data DIR), which mints the medium\'s token', { hint: 'run ferry media customize on the server, or give --data DIR' });
      m.token = mintMediumToken(d, { label: m.label, imageDigest: m.image.digest, node: m.node.name, server: o.server, actor: 'cli' });
    }
    const bytes = encodeMediumSlot(m, p.generation + 1); // refuses a part that does not fit before anything is written
    const at = ext[p.next].offset;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off, at + off);
    fsyncSync(fd);
    return { iso: o.iso, node: m.node.name, image: `${m.image.name}@${m.image.version}`, slot: MEDIUM_SLOTS[p.next], generation: p.generation + 1, offset: at, bytes: bytes.length, seconds: (Date.now() - t0) / 1000 };
  } finally {
    closeSync(fd);
  }
}
