/**
 * `ferry media records FILE|DEV`: bring the install records a medium kept on itself (a failed
 * install from a stick that could not reach the server: installer/medium-record.ts) into this
 * server's history. The medium is read as it is (an ISO file, or the stick's device): its
 * description (the newest valid slot) gives its token, which must be one this server minted and
 * has not revoked (FERRY_E_MEDIUM_REVOKED), and the layout the records leave out. Each record is
 * stored once (by its id), so importing again, or after the medium's own post, changes nothing.
 */
import { closeSync, openSync } from 'node:fs';
import { FerryError } from '../../common/errors.js';
import { isoFileExtent } from '../../common/iso9660.js';
import { fdReader, readRecordArea } from '../../common/medium-records.js';
import { MEDIUM_PART_BYTES, MEDIUM_SLOTS, pickMediumSlot } from '../../common/medium.js';
import type { DataDir } from '../context.js';
import { checkMediumToken, recordMediumInstall } from '../db/media.js';

export interface ImportedRecord {
  slot: number;
  record: string;
  node: string;
  status: string;
  error?: string;
  endedAt: string;
  deployment: number;
  duplicate: boolean;
}

export interface MediumRecordsResult {
  medium: string;
  label: string;
  records: ImportedRecord[];
  /** Slots holding a torn or damaged record (skipped). */
  damaged: number[];
}

export function importMediumRecords(d: DataDir, path: string): MediumRecordsResult {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new FerryError('FERRY_E_SOURCE_MISSING', `cannot read the medium ${path}: ${(e as Error).message}`, { details: { path }, hint: 'give the ISO file or the stick\'s whole-disk device (lsblk), as root for a device' });
  }
  try {
    const read = fdReader(fd);
    const slots = MEDIUM_SLOTS.map((s) => {
      const e = isoFileExtent(read, s);
      return e ? read(e.offset, Math.min(e.size, MEDIUM_PART_BYTES)) : undefined;
    });
    const p = pickMediumSlot(slots);
    if (!p.ok) throw new FerryError('FERRY_E_MEDIUM_INVALID', `${path} is not a restore medium of this version (${p.problems.join('; ')})`, { details: { path, problems: p.problems }, hint: 'give an ISO or a stick made by ferry media build' });
    const m = p.manifest;
    const area = readRecordArea(read);
    if (!area) throw new FerryError('FERRY_E_MEDIUM_INVALID', `${path} has no records area (ferry/records.bin): a medium of an older ferry media build`, { details: { path }, hint: 'rebuild the medium with this version of ferry media build' });
    if (!m.token) throw new FerryError('FERRY_E_MEDIUM_INVALID', `medium ${m.label} on ${path} carries no token, so its records cannot be told from forged ones`, { details: { path, label: m.label }, hint: 'media built by this version always carry one: rebuild the medium' });
    const c = checkMediumToken(d, m.token);
    if (!c.ok) throw new FerryError(c.code, `${path} (medium ${m.label}): ${c.message}`, { details: { path, label: m.label }, hint: c.hint });
    const records: ImportedRecord[] = [];
    for (const r of [...area.records].sort((a, b) => a.seq - b.seq)) {
      const rec = r.record;
      if (!rec.layout.xml && rec.layout.digest === m.layout.digest) rec.layout = m.layout;
      const s = recordMediumInstall(d, c.medium, rec);
      records.push({ slot: r.slot, record: rec.id, node: rec.node, status: rec.status, ...(rec.error ? { error: rec.error.code } : {}), endedAt: rec.endedAt, deployment: s.deployment, duplicate: s.duplicate });
    }
    return { medium: path, label: m.label, records, damaged: area.damaged };
  } finally {
    closeSync(fd);
  }
}
