import { describe, expect, it } from 'vitest';
import { bootifOf, normalizeMac, parseMac } from '../../common/mac.js';
import { macFromBootif, pickMac } from '../../installer/identify.js';
import { normaliseMac } from '../../server/db/inventory.js';

const CANON = '52:54:00:ab:cd:ef';

describe('the MAC parser (common/mac.ts)', () => {
  const forms: [string, string][] = [
    ['colons', '52:54:00:ab:cd:ef'],
    ['colons, upper case', '52:54:00:AB:CD:EF'],
    ['hyphens', '52-54-00-ab-cd-ef'],
    ['Cisco dotted', '5254.00ab.cdef'],
    ['no separators', '525400ABCDEF'],
    ['PXE / BOOTIF (ARP type 1 in front)', '01-52-54-00-ab-cd-ef'],
    ['surrounding blanks', '  52:54:00:ab:cd:ef\n'],
  ];
  for (const [what, s] of forms) {
    it(`reads ${what}: ${JSON.stringify(s)}`, () => {
      expect(parseMac(s)).toBe(CANON);
      expect(normalizeMac(s)).toBe(CANON);
    });
  }

  const bad = ['', 'nonsense', '52:54:00:ab:cd', '52:54:00:ab:cd:ef:01', '52:54-00:ab:cd:ef', 'zz:54:00:ab:cd:ef', '5254.00ab.cdef.0102', '525400abcde', '02-52-54-00-ab-cd-ef', '01:52:54:00:ab:cd:ef', '../etc/passwd', '52:54:00:ab:cd:ef; reboot'];
  for (const s of bad) {
    it(`refuses ${JSON.stringify(s)} with FERRY_E_BOOT_BAD_MAC`, () => {
      expect(parseMac(s)).toBeUndefined();
      expect(() => normalizeMac(s)).toThrow(expect.objectContaining({ code: 'FERRY_E_BOOT_BAD_MAC', details: { mac: s } }));
    });
  }

  it('derives the PXE form back', () => {
    expect(bootifOf('5254.00AB.CDEF')).toBe('01-52-54-00-ab-cd-ef');
    expect(() => bootifOf('nonsense')).toThrow(expect.objectContaining({ code: 'FERRY_E_BOOT_BAD_MAC' }));
  });

  it('is the parser the installer and the inventory use', () => {
    for (const [, s] of forms) {
      expect(macFromBootif(s)).toBe(CANON);
      expect(normaliseMac(s)).toBe(CANON);
    }
    for (const s of bad) {
      expect(macFromBootif(s)).toBeUndefined();
      expect(normaliseMac(s)).toBeUndefined();
    }
    expect(pickMac([{ name: 'ib0', mac: '80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:0a:8b:4f', physical: true, up: true }, { name: 'eth0', mac: '52:54:00:AB:CD:EF', physical: true, up: false }])).toBe(CANON);
  });
});
