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
const SLOT_HEADER_RE = /^ferry-medium-slot\/1 generation=(\d{1,12}) bytes=(\d{1,9}) sha256=([0-9a-f]{64})\n/;

/** A slot's exact bytes: header, the description's JSON, spaces up to MEDIUM_PART_BYTES. */
export function encodeMediumSlot(m: MediumManifest, generation: number): Buffer {
  const json = Buffer.from(JSON.stringify(m, null, 2) + '\n');
  const header = Buffer.from(`${SLOT_FORMAT} generation=${generation} bytes=${json.length} sha256=${createHash('sha256').update(json).digest('hex')}\n`);
  if (header.length + json.length > MEDIUM_PART_BYTES) {
    throw new FerryError('FERRY_E_MEDIA_PART_TOO_BIG', `the medium's description (node ${m.node.name}: layout, inputs, image manifest) takes ${json.length} bytes; each of ${MEDIUM_FILE} has room for ${MEDIUM_PART_BYTES - header.length}`, {
      details: { bytes: json.length, roomBytes: MEDIUM_PART_BYTES - header.length, node: m.node.name },
      hint: 'shorten the layout or the inputs (--set values); nothing was written',
    });
  }
  const b = Buffer.alloc(MEDIUM_PART_BYTES, 0x20);
  header.copy(b);
  json.copy(b, header.length);
  b[b.length - 1] = 0x0a;
  return b;
}

/** An empty slot (spaces): what the second slot holds until the first customize. */
export function emptyMediumSlot(): Buffer {
  return Buffer.alloc(MEDIUM_PART_BYTES, 0x20);
}

export type DecodedSlot = { ok: true; generation: number; manifest: MediumManifest } | { ok: false; why: string };

/** Read one slot: its header, its checksum, its JSON; never throws. */
export function decodeMediumSlot(b: Buffer | undefined): DecodedSlot {
  if (!b) return { ok: false, why: 'missing' };
  const head = b.subarray(0, 200).toString('latin1');
  const h = SLOT_HEADER_RE.exec(head);
  if (!h) return { ok: false, why: /^\s*$/.test(head) ? 'empty' : 'no slot header' };
  const start = h[0].length;
  const len = Number(h[2]);
  if (start + len > b.length) return { ok: false, why: `says ${len} bytes, the slot holds ${b.length - start}` };
  const json = b.subarray(start, start + len);
  if (createHash('sha256').update(json).digest('hex') !== h[3]) return { ok: false, why: 'checksum mismatch (a torn or damaged write)' };
  try {
    return { ok: true, generation: Number(h[1]), manifest: JSON.parse(json.toString('utf8')) as MediumManifest };
  } catch (e) {
    return { ok: false, why: `not JSON: ${(e as Error).message}` };
  }
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
  status: 'success';
  startedAt: string;
  endedAt: string;
  events: { ts?: string; phase: string; state: string; object?: string; message?: string; code?: string }[];
}
