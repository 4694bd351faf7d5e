/**
 * A restore medium's description, ferry/medium.json: written by `ferry media build`
 * (server/media/plan.ts), read by the installer (installer/medium.ts). Shared so both sides
 * agree on one shape.
 */
import { createHash } from 'node:crypto';
import { FerryError } from './errors.js';
import type { ImageManifest } from './protocol.js';

export const MEDIUM_FORMAT = 'ferry-medium/1';
/**
 * Where the description is, relative to the medium's root: two slots of MEDIUM_PART_BYTES each.
 * Each slot is a header line (`ferry-medium-slot/1 generation=N bytes=L sha256=HEX`), then the
 * description's L bytes of JSON, then spaces. The installer takes the newest slot whose checksum
 * holds; `ferry media customize` writes the other one (the older or an invalid one) with the next
 * generation and fsyncs, so a crash mid-write leaves the previous description readable.
 */
export const MEDIUM_SLOTS = ['ferry/medium.0', 'ferry/medium.1'] as const;
/** Named in messages: the description, whichever slot holds it. */
export const MEDIUM_FILE = 'ferry/medium.{0,1}';
/** The fixed size of each slot on a medium: room for the node's part to grow when customized. */
export const MEDIUM_PART_BYTES = 256 * 1024;
export const SLOT_FORMAT = 'ferry-medium-slot/1';

/**
 * The records area, ferry/records.bin: RECORD_SLOTS slots of RECORD_SLOT_BYTES, blank when built.
 * An install from a writable medium (a stick, never a CD) that failed and could not post its
 * record to the server writes it into a free slot (else the oldest), in the same checked format
 * as the description's slots (`ferry-record-slot/1 generation=SEQ bytes=L sha256=HEX`, then the
 * record's JSON). `ferry media records FILE|DEV` reads them back into `ferry history`.
 */
export const RECORD_AREA_FILE = 'ferry/records.bin';
export const RECORD_SLOTS = 16;
export const RECORD_SLOT_BYTES = 64 * 1024;
export const RECORD_SLOT_FORMAT = 'ferry-record-slot/1';

/** A checked slot: `FORMAT generation=N bytes=L sha256=HEX\n`, the JSON, spaces up to `size`; undefined when it does not fit. */
export function encodeCheckedSlot(format: string, generation: number, json: Buffer, size: number): Buffer | undefined {
  const header = Buffer.from(`${format} generation=${generation} bytes=${json.length} sha256=${createHash('sha256').update(json).digest('hex')}\n`);
  if (header.length + json.length > size) return undefined;
  const b = Buffer.alloc(size, 0x20);
  header.copy(b);
  json.copy(b, header.length);
  b[b.length - 1] = 0x0a;
  return b;
}

/** Read one checked slot of `format`: its header, its checksum, its JSON; never throws. */
export function decodeCheckedSlot<T>(format: string, b: Buffer | undefined): { ok: true; generation: number; value: T } | { ok: false; why: string } {
  if (!b) return { ok: false, why: 'missing' };
  const head = b.subarray(0, 200).toString('latin1');
  const h = new RegExp(`^${format.replace(/[/.]/g, '\\$&')} generation=(\\d{1,12}) bytes=(\\d{1,9}) sha256=([0-9a-f]{64})\\n`).exec(head);
  if (!h) return { ok: false, why: /^[\s\0]*$/.test(head) ? 'empty' : 'no slot header' };
  const start = h[0].length;
  const len = Number(h[2]);
  if (start + len > b.length) return { ok: false, why: `says ${len} bytes, the slot holds ${b.length - start}` };
  const json = b.subarray(start, start + len);
  if (createHash('sha256').update(json).digest('hex') !== h[3]) return { ok: false, why: 'checksum mismatch (a torn or damaged write)' };
  try {
    return { ok: true, generation: Number(h[1]), value: JSON.parse(json.toString('utf8')) as T };
  } catch (e) {
    return { ok: false, why: `not JSON: ${(e as Error).message}` };
  }
}

/** A slot's exact bytes: header, the description's JSON, spaces up to MEDIUM_PART_BYTES. */
export function encodeMediumSlot(m: MediumManifest, generation: number): Buffer {
  const json = Buffer.from(JSON.stringify(m, null, 2) + '\n');
  const b = encodeCheckedSlot(SLOT_FORMAT, generation, json, MEDIUM_PART_BYTES);
  if (!b) {
    const room = MEDIUM_PART_BYTES - 120;
    throw new FerryError('FERRY_E_MEDIA_PART_TOO_BIG', `the medium's description (node ${m.node.name}: layout, inputs, image manifest) takes ${json.length} bytes; each of ${MEDIUM_FILE} has room for about ${room}`, {
      details: { bytes: json.length, roomBytes: room, node: m.node.name },
      hint: 'shorten the layout or the inputs (--set values); nothing was written',
    });
  }
  return b;
}

/** An empty slot (spaces): what the second slot holds until the first customize. */
export function emptyMediumSlot(): Buffer {
  return Buffer.alloc(MEDIUM_PART_BYTES, 0x20);
}

export type DecodedSlot = { ok: true; generation: number; manifest: MediumManifest } | { ok: false; why: string };

/** Read one slot: its header, its checksum, its JSON; never throws. */
export function decodeMediumSlot(b: Buffer | undefined): DecodedSlot {
  const d = decodeCheckedSlot<MediumManifest>(SLOT_FORMAT, b);
  return d.ok ? { ok: true, generation: d.generation, manifest: d.value } : d;
}

/** The newest valid slot of the two, and which one to write next (the other). */
export function pickMediumSlot(slots: (Buffer | undefined)[]): { ok: true; index: number; generation: number; manifest: MediumManifest; next: number } | { ok: false; problems: string[] } {
  const d = slots.map(decodeMediumSlot);
  let best = -1;
  d.forEach((s, i) => {
    if (s.ok && (best < 0 || s.generation > (d[best] as { generation: number }).generation)) best = i;
  });
  if (best < 0) return { ok: false, problems: d.map((s, i) => `${MEDIUM_SLOTS[i] ?? `slot ${i}`}: ${(s as { why: string }).why}`) };
  const s = d[best] as { generation: number; manifest: MediumManifest };
  return { ok: true, index: best, generation: s.generation, manifest: s.manifest, next: best === 0 ? 1 : 0 };
}

export interface MediumManifest {
  format: typeof MEDIUM_FORMAT;
  /** The file-system label the boot environment finds the medium by (ferry.medium=LABEL). */
  label: string;
  /** Install without asking (no countdown). */
  unattended: boolean;
  /** Report to this server when the network reaches it. */
  server?: string;
  /**
   * The medium's own token (minted by `ferry media build`, stored hashed in the server's data
   * directory), good only for posting this medium's install records; `ferry media revoke ID`
   * ends it.
   */
  token?: string;
  node: { name: string; macs: string[]; properties: Record<string, string> };
  image: ImageManifest;
  layout: { xml: string; digest: string };
  inputs: Record<string, string>;
  bootloader: 'auto' | 'none' | 'bios' | 'uefi';
  /** Where each layer is on the medium, relative to its root. */
  layers: { digest: string; size: number; path: string }[];
}

/** The offline install record, written into the installed system (installer/medium-record.ts). */
export const RECORD_FORMAT = 'ferry-install-record/1';
export const RECORD_FILE = 'var/lib/ferry/install-record.json';
/** Where the medium token's request header is kept for the first-boot report (mode 0600). */
export const REPORT_HEADER_FILE = 'var/lib/ferry/report.header';
export const REPORT_URL_FILE = 'var/lib/ferry/report.url';
export const REPORT_SCRIPT = 'usr/local/sbin/ferry-report-install';
export const REPORT_UNIT = 'etc/systemd/system/ferry-report-install.service';
export const REPORT_UNIT_LINK = 'etc/systemd/system/multi-user.target.wants/ferry-report-install.service';
/** The server route a medium's install record is posted to (medium token). */
export const MEDIA_RECORD_ROUTE = '/api/v1/media/record';
/** At most this many events in a record (stage starts, ends, errors and warnings are kept first). */
export const RECORD_MAX_EVENTS = 2000;
/** A record body is refused above this size. */
export const RECORD_MAX_BYTES = 4 << 20;

export interface InstallRecord {
  format: typeof RECORD_FORMAT;
  /** Unique per install: a record posted twice is stored once. */
  id: string;
  medium: string;
  node: string;
  image: { name: string; version: number; digest: string };
  layout: { xml: string; digest: string };
  inputs: Record<string, string>;
  status: 'success' | 'failed' | 'aborted';
  /** A failed or aborted install: the stage, the code and message, as the network path reports them. */
  error?: { code: string; message: string; phase?: string; details?: Record<string, unknown> };
  startedAt: string;
  endedAt: string;
  events: { ts?: string; phase: string; state: string; object?: string; message?: string; code?: string }[];
}
