/**
 * SystemImager autoinstall XML → Layout, with every problem found at once.
 *
 * Accepts the files SystemImager accepted across its versions: `disk`/`part`, RAID in both
 * syntaxes (a flat `<raid name=… devices=…>` per array, and `<raid><raid_disk>` with
 * `raid_dev` on partitions), `lvm`/`lvm_group`/`lv`, `fsinfo`, `bootloader`/`target` and the
 * legacy `boel`. Ferry's extensions: `min_size`, `max_size`, `weight` on `part` and `lv`;
 * `serial`, `wwn`, `by_path`, `model`, `min_size` and `hw` (the same hints as hw.disk.* terms) on
 * `disk`; `label` on `fsinfo`.
 *
 * Checks here need no disk sizes (the document here, each element in elements.ts, references in
 * references.ts); whether a layout fits is decided when it is planned onto disks.
 */
import { createHash } from 'node:crypto';
import { ValidationError, type Problem } from '../common/errors.js';
import { Reader } from './reader.js';
import { checkReferences } from './references.js';
import { parseXml } from './xml.js';
import { ATTRIBUTES, readBootloader, readDisk, readFs, readRaid, readVolumeGroup } from './elements.js';
import type { Layout } from './types.js';

export interface ReadResult {
  /** Present unless the XML could not be read at all. */
  layout?: Layout;
  /** Errors and warnings, in document order. */
  problems: Problem[];
}

const TOP_ELEMENTS = ['disk', 'raid', 'lvm', 'fsinfo', 'bootloader', 'boel'];

/** Read a layout without throwing: the layout (when the XML could be read) and every problem. */
export function readLayout(xml: string, opts: { file?: string } = {}): ReadResult {
  const r = new Reader();
  const { root, problem } = parseXml(xml);
  if (!root) return { problems: [problem!] };
  const at = r.where(root);
  r.knownAttributes(root, ATTRIBUTES.config);
  if (root.name !== 'config') {
    r.error('FERRY_E_LAYOUT_XML', at, `the root element is <${root.name}>; a layout's is <config>`);
    return { problems: r.problems };
  }
  const layout: Layout = {
    digest: createHash('sha256').update(xml).digest('hex'),
    file: opts.file,
    disks: [], raids: [], volumeGroups: [], filesystems: [], warnings: [],
  };
  for (const c of root.children) {
    switch (c.name) {
      case 'disk': {
        const d = readDisk(r, c);
        if (d) layout.disks.push(d);
        break;
      }
      case 'raid': {
        // The flat syntax's attributes are checked by readRaid.
        if (c.attrs.name === undefined) r.knownAttributes(c, []);
        if (c.attrs.name !== undefined) {
          // Flat syntax: one <raid name=… devices=…> per array.
          const a = readRaid(r, c);
          if (a) layout.raids.push(a);
        }
        for (const rd of c.children) {
          if (rd.name !== 'raid_disk') {
            r.unknownElement(rd, 'inside <raid>', ['raid_disk']);
            continue;
          }
          const a = readRaid(r, rd);
          if (a) layout.raids.push(a);
        }
        break;
      }
      case 'lvm': {
        r.knownAttributes(c, ATTRIBUTES.lvm);
        const v = r.attr(c, 'version');
        if (v !== undefined && v !== '2') r.warn('FERRY_W_LAYOUT_IGNORED', r.where(c, 'version'), `LVM metadata version ${v} is not made any more; LVM2 metadata is written`);
        for (const g of c.children) {
          if (g.name !== 'lvm_group') {
            r.unknownElement(g, 'inside <lvm>', ['lvm_group']);
            continue;
          }
          const vg = readVolumeGroup(r, g);
          if (vg) layout.volumeGroups.push(vg);
        }
        break;
      }
      case 'fsinfo': {
        const f = readFs(r, c);
        if (f) layout.filesystems.push(f);
        break;
      }
      case 'bootloader': {
        const b = readBootloader(r, c);
        if (layout.bootloader) r.warn('FERRY_W_LAYOUT_IGNORED', r.where(c), 'a second <bootloader> is ignored; the first one counts');
        else if (b) layout.bootloader = b;
        break;
      }
      case 'boel':
        // Brian's Own Embedded Linux settings: read so old files load, then ignored.
        r.knownAttributes(c, ATTRIBUTES.boel);
        layout.boel = { devstyle: r.attr(c, 'devstyle') };
        break;
      default:
        r.unknownElement(c, 'in <config>', TOP_ELEMENTS);
    }
  }
  if (layout.disks.length === 0) r.error('FERRY_E_LAYOUT_ATTR', at, 'the layout has no <disk>', 'describe at least one disk');
  checkReferences(r, layout);
  layout.warnings = r.problems.filter((p) => p.severity === 'warning');
  return { layout, problems: r.problems };
}

/** Read and validate a layout; throws a ValidationError listing every problem if any is an error. */
export function parseLayout(xml: string, opts: { file?: string } = {}): Layout {
  const { layout, problems } = readLayout(xml, opts);
  if (!layout || problems.some((p) => p.severity === 'error')) {
    throw new ValidationError('FERRY_E_LAYOUT_INVALID', `layout ${opts.file ?? ''}`.trim(), problems, opts.file);
  }
  return layout;
}
