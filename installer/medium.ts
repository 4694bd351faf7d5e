/**
 * Installing from a restore medium (`ferry media build`): read its description
 * (ferry/medium.{0,1}: the newest valid slot), verify every layer on it against its size and sha256 before the first disk
 * write, and turn it into the install configuration the stages run on, with the local transport
 * (installer/transport/local.ts) instead of a server. A damaged medium is refused with the layer
 * named and the disks untouched.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../common/errors.js';
import { MEDIUM_FILE, MEDIUM_FORMAT, MEDIUM_SLOTS, pickMediumSlot, type MediumManifest } from '../common/medium.js';
import type { ProgressSink } from '../common/progress.js';
import type { InstallConfig } from '../common/protocol.js';
import { mediumLayerPath } from './transport/local.js';

/** The medium's description: the newest of its two slots whose checksum holds (common/medium.ts). */
export function readMedium(dir: string): MediumManifest {
  const file = join(dir, MEDIUM_FILE);
  const slots = MEDIUM_SLOTS.map((s) => {
    try {
      return readFileSync(join(dir, s));
    } catch {
      return undefined;
    }
  });
  const p = pickMediumSlot(slots);
  if (!p.ok) {
    throw new FerryError('FERRY_E_MEDIUM_INVALID', `${file} holds no readable medium description (${p.problems.join('; ')})`, { details: { path: file, problems: p.problems }, hint: 'give the root of a medium made by ferry media build (the mounted ISO, or its files); rebuild a damaged one' });
  }
  const m = p.manifest;
  const bad = (why: string) => new FerryError('FERRY_E_MEDIUM_INVALID', `${file}: ${why}`, { details: { path: file }, hint: 'rebuild the medium with this version of ferry media build' });
  if (m?.format !== MEDIUM_FORMAT) throw bad(`format is ${JSON.stringify(m?.format)}, not ${MEDIUM_FORMAT}`);
  if (!m.image || !Array.isArray(m.image.layers) || !m.layout?.xml || !m.node?.name) throw bad('it lacks the image layers, the layout or the node');
  return m;
}

/** Hash every layer on the medium (size, then sha256): all must match before a disk is written. */
export async function verifyMediumLayers(dir: string, m: MediumManifest, emit?: ProgressSink): Promise<void> {
  const layers = m.image.layers;
  for (const [i, l] of layers.entries()) {
    const file = mediumLayerPath(dir, l.digest);
    const what = `layer ${i + 1} of ${layers.length} (${l.digest})`;
    const fail = (why: string, details: Record<string, unknown>) =>
      new FerryError('FERRY_E_MEDIUM_LAYER_BAD', `${what} on the medium ${dir} ${why}; no disk was written`, {
        details: { layer: i + 1, digest: l.digest, path: file, ...details },
        hint: 'the medium is damaged or incomplete: rebuild it (ferry media build) and write it again (ferry media write)',
      });
    let size: number;
    try {
      size = statSync(file).size;
    } catch (e) {
      throw fail(`cannot be read: ${(e as Error).message}`, {});
    }
    if (size !== l.size) throw fail(`holds ${size} bytes, the image says ${l.size}`, { expected: l.size, actual: size });
    const h = createHash('sha256');
    let read = 0;
    try {
      for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
        h.update(chunk as Buffer);
        read += (chunk as Buffer).length;
        emit?.({ phase: 'config', state: 'progress', object: l.digest, bytes: read, total: l.size, message: `verifying ${what}` });
      }
    } catch (e) {
      throw fail(`cannot be read: ${(e as Error).message}`, { bytesRead: read });
    }
    const actual = 'sha256:' + h.digest('hex');
    if (actual !== l.digest) throw fail(`does not match its digest: got ${actual}`, { expected: l.digest, actual });
  }
}

/** The install configuration a medium stands for: no server, no deployment id, local layers. */
export function mediumInstallConfig(m: MediumManifest): InstallConfig {
  return {
    node: m.node,
    deployment: { id: 0, expiresAt: '' },
    image: m.image,
    layout: m.layout,
    inputs: m.inputs,
    transport: { kind: 'http', baseUrl: '' },
    bootloader: m.bootloader,
    finish: 'reboot',
  };
}
