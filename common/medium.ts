/**
 * A restore medium's description, ferry/medium.json: written by `ferry media build`
 * (server/media/plan.ts), read by the installer (installer/medium.ts). Shared so both sides
 * agree on one shape.
 */
import type { ImageManifest } from './protocol.js';

export const MEDIUM_FORMAT = 'ferry-medium/1';
/** Where the description is, relative to the medium's root. */
export const MEDIUM_FILE = 'ferry/medium.json';

export interface MediumManifest {
  format: typeof MEDIUM_FORMAT;
  /** The file-system label the boot environment finds the medium by (ferry.medium=LABEL). */
  label: string;
  /** Install without asking (no countdown). */
  unattended: boolean;
  /** Report to this server when the network reaches it. */
  server?: string;
  /**
   * With `server`: the medium's own token (minted by `ferry media build`, stored hashed in the
   * server's data directory), good only for posting this medium's install records.
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
