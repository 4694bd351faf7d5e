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
  node: { name: string; macs: string[]; properties: Record<string, string> };
  image: ImageManifest;
  layout: { xml: string; digest: string };
  inputs: Record<string, string>;
  bootloader: 'auto' | 'none' | 'bios' | 'uefi';
  /** Where each layer is on the medium, relative to its root. */
  layers: { digest: string; size: number; path: string }[];
}
