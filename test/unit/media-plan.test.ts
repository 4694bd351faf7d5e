/** The restore medium's plan (server/media/plan.ts): pure, no tools run. */
import { describe, expect, it } from 'vitest';
import type { ImageManifest } from '../../common/protocol.js';
import { checkLabel, defaultLabel, efiImageArgv, planMedium, type MediumInput } from '../../server/media/plan.js';

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
    expect(JSON.parse(planMedium(input({ server: 'http://s:8080' })).files['ferry/medium.json']).server).toBe('http://s:8080');
  });

  it('refuses a layer with no blob and a label loaders cannot search for', () => {
    expect(() => planMedium(input({ blobFiles: { [D1]: '/x' } }))).toThrow(expect.objectContaining({ code: 'FERRY_E_BLOB_MISSING' }));
    expect(() => checkLabel('my medium')).toThrow(expect.objectContaining({ code: 'FERRY_E_MEDIA_LABEL' }));
    expect(() => checkLabel('A'.repeat(33))).toThrow(expect.objectContaining({ code: 'FERRY_E_MEDIA_LABEL' }));
    expect(defaultLabel({ name: 'web.server', version: 12 })).toBe('FERRY-WEB_SERVER-12');
  });

  it('sizes the FAT image for the EFI binary plus room', () => {
    const e = efiImageArgv('/st/efi.img', 3_399_680);
    expect(e.sizeBytes).toBeGreaterThan(3_399_680);
    expect(e.argv[0].slice(0, 5)).toEqual(['mformat', '-i', '/st/efi.img', '-T', String((e.sizeBytes / 1024) * 2)]);
  });
});
