/**
 * The records area of a restore medium (ferry/records.bin, common/medium.ts): where an install
 * from a stick that failed, and could not post its record to the server, keeps the record, and
 * where `ferry media records FILE|DEV` finds it. The area is found in the ISO's own directory
 * (common/iso9660.ts), so the boot environment needs no xorriso; each record is one checked slot,
 * so a torn write spoils only that slot (it reads as invalid and is the next one written).
 */
import { closeSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { isoFileExtent, type ReadAt } from './iso9660.js';
import { decodeCheckedSlot, encodeCheckedSlot, RECORD_AREA_FILE, RECORD_SLOT_BYTES, RECORD_SLOT_FORMAT, RECORD_SLOTS, type InstallRecord } from './medium.js';

export function fdReader(fd: number): ReadAt {
  return (offset, length) => {
    const b = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, b, got, length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return b.subarray(0, got);
  };
}

/** A record made to fit one slot: the layout's XML left out (the medium has it), then fewer events, newest kept. */
export function recordSlotBytes(rec: InstallRecord, seq: number): Buffer {
  const compact: InstallRecord = { ...rec, layout: { xml: '', digest: rec.layout.digest } };
  let events = rec.events;
  for (;;) {
    const b = encodeCheckedSlot(RECORD_SLOT_FORMAT, seq, Buffer.from(JSON.stringify({ ...compact, events })), RECORD_SLOT_BYTES);
    if (b) return b;
    if (events.length === 0) {
      // Only a huge error message or inputs can still not fit: keep the error's code and stage.
      const small = { ...compact, inputs: {}, events: [], error: rec.error ? { code: rec.error.code, message: rec.error.message.slice(0, 2000), phase: rec.error.phase } : undefined };
      return encodeCheckedSlot(RECORD_SLOT_FORMAT, seq, Buffer.from(JSON.stringify(small)), RECORD_SLOT_BYTES)!;
    }
    // Errors and warnings first, then the newest of the rest.
    const key = events.filter((e) => e.state === 'error' || e.state === 'warning');
    const rest = events.filter((e) => e.state !== 'error' && e.state !== 'warning');
    events = key.length >= events.length ? key.slice(-Math.floor(key.length / 2)) : [...rest.slice(-Math.floor(rest.length / 2)), ...key];
  }
}

export interface AreaRecord {
  slot: number;
  seq: number;
  record: InstallRecord;
}

export interface RecordArea {
  offset: number;
  size: number;
  records: AreaRecord[];
  /** Slots that are neither blank nor a valid record (torn or damaged), by index. */
  damaged: number[];
}

/** The records area of the ISO read by `read`, or undefined when the medium has none. */
export function readRecordArea(read: ReadAt): RecordArea | undefined {
  const ext = isoFileExtent(read, RECORD_AREA_FILE);
  if (!ext || ext.size < RECORD_SLOT_BYTES) return undefined;
  const n = Math.min(RECORD_SLOTS, Math.floor(ext.size / RECORD_SLOT_BYTES));
  const area: RecordArea = { offset: ext.offset, size: n * RECORD_SLOT_BYTES, records: [], damaged: [] };
  for (let i = 0; i < n; i++) {
    const d = decodeCheckedSlot<InstallRecord>(RECORD_SLOT_FORMAT, read(ext.offset + i * RECORD_SLOT_BYTES, RECORD_SLOT_BYTES));
    if (d.ok) area.records.push({ slot: i, seq: d.generation, record: d.value });
    else if (d.why !== 'empty') area.damaged.push(i);
  }
  return area;
}

/** Where the next record goes: a blank or damaged slot, else the oldest record's. */
export function nextRecordSlot(area: RecordArea): { slot: number; seq: number } {
  const n = area.size / RECORD_SLOT_BYTES;
  const used = new Map(area.records.map((r) => [r.slot, r.seq]));
  const seq = Math.max(0, ...area.records.map((r) => r.seq)) + 1;
  for (let i = 0; i < n; i++) if (!used.has(i)) return { slot: i, seq };
  const oldest = [...area.records].sort((a, b) => a.seq - b.seq)[0];
  return { slot: oldest.slot, seq };
}

/** Write `rec` into the records area of the medium at `path` (a stick's whole-disk device, or an ISO file), then fsync. */
export function writeRecordToMedium(path: string, rec: InstallRecord): { slot: number; offset: number } | { refused: string } {
  let fd: number;
  try {
    fd = openSync(path, 'r+');
  } catch (e) {
    return { refused: `cannot open ${path} for writing: ${(e as Error).message}` };
  }
  try {
    const area = readRecordArea(fdReader(fd));
    if (!area) return { refused: `${path} has no records area (${RECORD_AREA_FILE}): a medium of an older ferry media build` };
    const { slot, seq } = nextRecordSlot(area);
    const b = recordSlotBytes(rec, seq);
    const at = area.offset + slot * RECORD_SLOT_BYTES;
    let off = 0;
    while (off < b.length) off += writeSync(fd, b, off, b.length - off, at + off);
    fsyncSync(fd);
    return { slot, offset: at };
  } catch (e) {
    return { refused: `writing the record onto ${path} failed: ${(e as Error).message}` };
  } finally {
    closeSync(fd);
  }
}

/** Blank the given slots (records posted to the server), then fsync; false when the medium cannot be written. */
export function clearRecordSlots(path: string, areaOffset: number, slots: number[]): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'r+');
  } catch {
    return false;
  }
  try {
    const blank = Buffer.alloc(RECORD_SLOT_BYTES, 0x20);
    for (const s of slots) {
      let off = 0;
      while (off < blank.length) off += writeSync(fd, blank, off, blank.length - off, areaOffset + s * RECORD_SLOT_BYTES + off);
    }
    fsyncSync(fd);
    return true;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}
