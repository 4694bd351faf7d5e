/**
 * Room on the target, before the first layer and when it runs out. A small compressed layer can
 * unpack to more than the target holds: the image's unpacked size (the sum of its layers' tar
 * sizes, which the manifest carries) is compared with the free space of every file system
 * mounted at or under the target root before anything is extracted. And a write that fails with
 * ENOSPC during extraction says which file system filled, not "internal error: ENOSPC".
 */
import { readFileSync, statfsSync, statSync } from 'node:fs';
import { FerryError } from '../common/errors.js';
import { formatBytes } from '../common/units.js';
import type { LayerRef } from '../common/protocol.js';

export interface TargetFs {
  mountPoint: string;
  availableBytes: number;
}

/** Octal escapes of /proc/self/mountinfo (\040 for a space). */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Pure: the mount points at or under `root` in mountinfo text, plus `root` itself. */
export function mountPointsUnder(root: string, mountinfo: string): string[] {
  const r = root.replace(/\/+$/, '') || '/';
  const points = new Set<string>([r]);
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const mp = unescapeMount(f[4]);
    if (mp === r || mp.startsWith(r === '/' ? '/' : r + '/')) points.add(mp);
  }
  return [...points].sort();
}

/** The file systems the target's files land on, with their free space (statfs, as root sees it). */
export function targetFileSystems(root: string, mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): TargetFs[] {
  const seen = new Map<string, TargetFs>();
  for (const mp of mountPointsUnder(root, mountinfo)) {
    // Bind mounts of one file system count once (the same device number).
    const key = String(statSync(mp).dev);
    if (seen.has(key)) continue;
    const st = statfsSync(mp);
    seen.set(key, { mountPoint: mp, availableBytes: Number(st.bavail) * Number(st.bsize) });
  }
  return [...seen.values()];
}

/** Pure: refuse when the image's unpacked size is more than all of the target's file systems hold. */
export function checkTargetRoom(layers: LayerRef[], fss: TargetFs[], image: string): void {
  if (layers.some((l) => l.uncompressedSize === undefined)) return; // an old manifest: nothing to compare
  const need = layers.reduce((s, l) => s + (l.uncompressedSize ?? 0), 0);
  const have = fss.reduce((s, f) => s + f.availableBytes, 0);
  if (need > have) {
    throw new FerryError('FERRY_E_TARGET_NO_ROOM', `image ${image} unpacks to ${formatBytes(need)}, but the target's file systems have ${formatBytes(have)} free (${fss.map((f) => `${f.mountPoint}: ${formatBytes(f.availableBytes)}`).join(', ')})`, {
      details: { image, unpackedBytes: need, availableBytes: have, fileSystems: fss },
      hint: 'give the layout larger partitions (or a larger disk), or install a smaller image; nothing was extracted',
    });
  }
}

/** An ENOSPC or EDQUOT from extraction as a FerryError naming the file system; anything else unchanged. */
export function explainNoSpace(e: unknown, root: string, mountinfo?: string): unknown {
  const codes: string[] = [];
  for (let x: any = e; x; x = x.cause) if (typeof x.code === 'string') codes.push(x.code);
  if (!codes.includes('ENOSPC') && !codes.includes('EDQUOT')) return e;
  let fss: TargetFs[] = [];
  try {
    fss = targetFileSystems(root, mountinfo);
  } catch {
    /* the message says what it can */
  }
  const full = fss.filter((f) => f.availableBytes < 1 << 20).map((f) => f.mountPoint);
  return new FerryError('FERRY_E_TARGET_NO_ROOM', `the target ran out of space while extracting${full.length ? ` (full: ${full.join(', ')})` : ''}: ${(e as Error).message}`, {
    details: { fileSystems: fss, errno: codes.includes('EDQUOT') ? 'EDQUOT' : 'ENOSPC' },
    hint: 'give the layout larger partitions for the full file systems, or install a smaller image',
    cause: e,
  });
}
