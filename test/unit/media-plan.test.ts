/** The restore medium's plan (server/media/plan.ts): pure, no tools run. */
import { describe, expect, it } from 'vitest';
import type { ImageManifest } from '../../common/protocol.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeMediumSlot, encodeMediumSlot, pickMediumSlot, type MediumManifest } from '../../common/medium.js';
import { parseDriverSet } from '../../initrd/spec.js';
import { customizedManifest } from '../../server/media/customize.js';
import { checkLabel, defaultLabel, DRIVER_SETS, efiImageArgv, MEDIUM_PART_BYTES, planMedium, type MediumInput } from '../../server/media/plan.js';

/** The description in a plan's first slot. */
const slot0 = (files: Record<string, string | Buffer>): MediumManifest => {
  const d = decodeMediumSlot(files['ferry/medium.0'] as Buffer);
  if (!d.ok) throw new Error(d.why);
  return d.manifest;
};
const D1 = 'sha256:' + '1'.repeat(64);
const D2 = 'sha256:' + '2'.repeat(64);
const image = { name: 'web', version: 3, digest: 'sha256:' + 'f'.repeat(64), layers: [{ digest: D1, size: 10, mediaType: 'x' }, { digest: D2, size: 20, mediaType: 'x' }] } as unknown as ImageManifest;

function input(o: Partial<MediumInput> = {}): MediumInput {
  return {
    out: '/out/m.iso', label: 'FERRY-WEB-3', unattended: false, node: { name: 'web7', macs: [], properties: {} }, image,
    layout: { xml: '<config/>', digest: 'sha256:' + 'a'.repeat(64) }, inputs: { hostname: 'web7' },
    blobFiles: { [D1]: '/data/blobs/sha256/' + '1'.repeat(64), [D2]: '/data/blobs/sha256/' + '2'.repeat(64) },
    kernel: '/b/vmlinuz', initrd: '/b/initrd.img', stage: '/st', ...o,
  };
}

describe('planMedium', () => {
  it('grafts every layer from the blob store as it is, by digest', () => {
    const p = planMedium(input());
    expect(p.xorrisoArgv).toContain(`ferry/layers/sha256/${'1'.repeat(64)}=/data/blobs/sha256/${'1'.repeat(64)}`);
    expect(p.xorrisoArgv).toContain(`ferry/layers/sha256/${'2'.repeat(64)}=/data/blobs/sha256/${'2'.repeat(64)}`);
    expect(p.manifest.layers.map((l) => [l.digest, l.size])).toEqual([[D1, 10], [D2, 20]]);
  });

  it('has a BIOS El Torito entry with the hybrid MBR and an EFI entry as a GPT partition, labelled', () => {
    const a = planMedium(input()).xorrisoArgv;
    const at = (f: string) => a[a.indexOf(f) + 1];
    expect(at('-V')).toBe('FERRY-WEB-3');
    expect(at('-b')).toBe('isolinux/isolinux.bin');
    expect(at('-isohybrid-mbr')).toBe('/usr/lib/ISOLINUX/isohdpfx.bin');
    expect(a.indexOf('-eltorito-alt-boot')).toBeLessThan(a.indexOf('-e'));
    expect(at('-e')).toBe('efi.img');
    expect(a).toContain('-isohybrid-gpt-basdat');
    expect(a).toContain('EFI/BOOT/BOOTX64.EFI=/st/BOOTX64.EFI');
    expect(at('-o')).toBe('/out/m.iso');
  });

  it('boots both loaders with the label on the kernel command line, unattended when asked', () => {
    const p = planMedium(input());
    expect(p.files['isolinux/isolinux.cfg']).toMatch(/APPEND initrd=\/boot\/initrd.img ferry.medium=FERRY-WEB-3 console=/);
    expect(p.files['boot/grub/grub.cfg']).toMatch(/linux \/boot\/vmlinuz ferry.medium=FERRY-WEB-3 console=/);
    expect(p.files['efi-early.cfg']).toContain('search --no-floppy --set=root --label FERRY-WEB-3');
    expect(planMedium(input({ unattended: true })).files['boot/grub/grub.cfg']).toContain('ferry.medium=FERRY-WEB-3 ferry.unattended=1');
    expect(slot0(planMedium(input({ server: 'http://s:8080' })).files).server).toBe('http://s:8080');
  });

  it('refuses a layer with no blob and a label loaders cannot search for', () => {
    expect(() => planMedium(input({ blobFiles: { [D1]: '/x' } }))).toThrow(expect.objectContaining({ code: 'FERRY_E_BLOB_MISSING' }));
    expect(() => checkLabel('my medium')).toThrow(expect.objectContaining({ code: 'FERRY_E_MEDIA_LABEL' }));
    expect(() => checkLabel('A'.repeat(33))).toThrow(expect.objectContaining({ code: 'FERRY_E_MEDIA_LABEL' }));
    expect(defaultLabel({ name: 'web.server', version: 12 })).toBe('FERRY-WEB_SERVER-12');
  });

  it('makes GRUB\'s EFI binary of only the modules it needs, with the early config embedded', () => {
    const g = planMedium(input()).grubArgv;
    expect(g.slice(0, 3)).toEqual(['grub-mkimage', '-O', 'x86_64-efi']);
    expect(g[g.indexOf('-c') + 1]).toBe('/st/efi-early.cfg');
    expect(g).toEqual(expect.arrayContaining(['iso9660', 'search_label', 'configfile', 'normal', 'linux']));
  });

  it('sizes the FAT image for the EFI binary plus room', () => {
    const e = efiImageArgv('/st/efi.img', 3_399_680);
    expect(e.sizeBytes).toBeGreaterThan(3_399_680);
    expect(e.argv[0].slice(0, 5)).toEqual(['mformat', '-i', '/st/efi.img', '-T', String((e.sizeBytes / 1024) * 2)]);
  });
});

describe('the node part (ferry/medium.0 and .1) and the driver sets', () => {
  it('is two slots of MEDIUM_PART_BYTES: the first generation 1 with its checksum, the second empty', () => {
    const f = planMedium(input()).files;
    const [a, b] = [f['ferry/medium.0'] as Buffer, f['ferry/medium.1'] as Buffer];
    expect([a.length, b.length]).toEqual([MEDIUM_PART_BYTES, MEDIUM_PART_BYTES]);
    expect(a.toString('latin1', 0, 80)).toMatch(/^ferry-medium-slot\/1 generation=1 bytes=\d+ sha256=/);
    expect(slot0(f).node.name).toBe('web7');
    expect(a[a.length - 2]).toBe(0x20);
    expect(decodeMediumSlot(b)).toEqual({ ok: false, why: 'empty' });
    expect(pickMediumSlot([a, b])).toMatchObject({ ok: true, index: 0, generation: 1, next: 1 });
  });

  it('takes the newest slot whose checksum holds: a torn or garbled newer slot gives the older one', () => {
    const m1 = slot0(planMedium(input()).files);
    const m2 = { ...m1, inputs: { hostname: 'web8' } };
    const a = encodeMediumSlot(m1, 1);
    const b = encodeMediumSlot(m2, 2);
    expect(pickMediumSlot([a, b])).toMatchObject({ ok: true, index: 1, generation: 2, next: 0 });
    // Torn: the new slot's first 300 bytes over the old slot's bytes (the header says 2, the body is the old one's).
    const torn = Buffer.concat([b.subarray(0, 300), encodeMediumSlot(m1, 0).subarray(300)]);
    expect(decodeMediumSlot(torn)).toMatchObject({ ok: false, why: expect.stringContaining('checksum') });
    expect(pickMediumSlot([a, torn])).toMatchObject({ ok: true, index: 0, generation: 1, next: 1 });
    // Garbled in the body, truncated, or with a garbled header.
    const garbled = Buffer.from(b);
    garbled[garbled.indexOf('web8')] ^= 0x01;
    expect(pickMediumSlot([a, garbled])).toMatchObject({ ok: true, index: 0 });
    expect(pickMediumSlot([a, b.subarray(0, 1000)])).toMatchObject({ ok: true, index: 0 });
    const badHead = Buffer.from(b);
    badHead[3] = 0x00;
    expect(pickMediumSlot([badHead, a])).toMatchObject({ ok: true, index: 1, generation: 1 });
    const none = pickMediumSlot([torn, undefined]);
    expect(none.ok).toBe(false);
    expect(!none.ok && none.problems).toEqual([expect.stringContaining('ferry/medium.0: checksum mismatch'), 'ferry/medium.1: missing']);
  });

  it('refuses a description that does not fit, never truncating it', () => {
    const xml = `<config><!-- ${'x'.repeat(MEDIUM_PART_BYTES)} --></config>`;
    expect(() => planMedium(input({ layout: { xml, digest: 'sha256:' + 'a'.repeat(64) } }))).toThrow(expect.objectContaining({ code: 'FERRY_E_MEDIA_PART_TOO_BIG' }));
  });

  it('names the image, not the node, in the boot menus (customize rewrites only the slots)', () => {
    const p = planMedium(input());
    expect(p.files['isolinux/isolinux.cfg']).toContain('Ferry restore: web@3\n');
    expect(String(p.files['boot/grub/grub.cfg'])).not.toContain('web7');
  });

  it('both driver sets carry what a USB stick needs: usb_storage, uas and the xHCI controller', () => {
    const load = (n: string) => {
      try {
        return readFileSync(join(import.meta.dirname, '..', '..', 'initrd', 'drivers', `${n}.txt`), 'utf8');
      } catch {
        return undefined;
      }
    };
    for (const set of DRIVER_SETS) expect(parseDriverSet(set, load).modules).toEqual(expect.arrayContaining(['usb_storage', 'uas', 'xhci_pci']));
  });
});

describe('customizedManifest', () => {
  const old = slot0(planMedium(input({ node: { name: 'web', macs: [], properties: {} }, inputs: { hostname: 'web' } })).files);
  it('sets inputs, renames an --image medium\'s node after its hostname, and sets or removes the server', () => {
    const LAYOUT = readFileSync(join(import.meta.dirname, '..', '..', 'layouts', 'bios-msdos.xml'), 'utf8');
    const base = { ...old, layout: { xml: LAYOUT, digest: 'sha256:' + 'a'.repeat(64) } };
    const m = customizedManifest(undefined, base, { iso: 'x.iso', set: { hostname: 'web8', role: 'db' }, server: 'http://s:1' });
    expect(m.node.name).toBe('web8');
    expect(m.inputs).toEqual({ hostname: 'web8', role: 'db' });
    expect(m.server).toBe('http://s:1');
    expect(m.image).toEqual(base.image);
    expect(customizedManifest(undefined, m, { iso: 'x.iso', server: '' }).server).toBeUndefined();
    // A node from the inventory keeps its name: only its hostname input changes.
    const n = customizedManifest(undefined, { ...base, node: { name: 'rack1', macs: ['52:54:00:00:00:01'], properties: {} } }, { iso: 'x.iso', set: { hostname: 'h2' } });
    expect([n.node.name, n.inputs.hostname]).toEqual(['rack1', 'h2']);
  });
  it('refuses a part arming would refuse, and --node without a data directory', () => {
    expect(() => customizedManifest(undefined, old, { iso: 'x.iso', layoutXml: '<config>' })).toThrow();
    expect(() => customizedManifest(undefined, old, { iso: 'x.iso', node: 'n1' })).toThrow(expect.objectContaining({ code: 'FERRY_E_USAGE' }));
  });
});
