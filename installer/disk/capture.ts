/**
 * `ferry layout capture`: read this machine's disks with its own tools (lsblk, parted, blkid,
 * /proc/mdstat, the LVM reports, fstab) and write them as layout XML (layout/capture.ts). The
 * reading is layout/gather.ts, shared with `ferry image capture` over SSH; here it runs locally.
 */
import { readFile } from 'node:fs/promises';
import { run } from '../../common/run.js';
import { captureToXml, type CaptureInput } from '../../layout/capture.js';
import { gatherCapture as gather, type CaptureSource } from '../../layout/gather.js';

export { extentPosition } from '../../layout/gather.js';

/** Commands and files of this machine. */
export const localSource: CaptureSource = {
  run,
  readFile: (path) => readFile(path, 'utf8').catch(() => undefined),
};

/** Gather what capture needs (I/O), for the given disks or every disk. */
export function gatherCapture(opts: { disks?: string[]; root?: string } = {}): Promise<CaptureInput> {
  return gather(localSource, opts);
}

export async function captureLayout(opts: { disks?: string[]; root?: string } = {}): Promise<string> {
  return captureToXml(await gatherCapture(opts));
}
