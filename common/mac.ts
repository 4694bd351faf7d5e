/**
 * The one MAC address parser. The spellings met in practice: `52:54:00:12:34:56` (the kernel,
 * iPXE's `${netX/mac}`), `52-54-00-12-34-56` (iPXE's `:hexhyp`, Windows), `5254.0012.3456`
 * (Cisco), `525400123456`, and `01-52-54-00-12-34-56` as PXE writes it (pxelinux's file name,
 * the kernel's BOOTIF: ARP hardware type 1, Ethernet, in front). One canonical form (lower case,
 * colons) is stored and compared; the others are derived from it.
 */
import { FerryError } from './errors.js';

/** Six bytes with one separator throughout (":" or "-") or none. */
const PLAIN_RE = /^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$/i;
const DOTTED_RE = /^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/i;
const PXE_RE = /^01-([0-9a-f]{2}-){5}[0-9a-f]{2}$/i;

/** `aa:bb:cc:dd:ee:ff` from any spelling above (surrounding blanks ignored), or undefined. */
export function parseMac(input: string): string | undefined {
  let s = input.trim();
  if (PXE_RE.test(s)) s = s.slice(3);
  else if (DOTTED_RE.test(s)) s = s.replace(/\./g, '');
  if (!PLAIN_RE.test(s)) return undefined;
  return s.replace(/[:-]/g, '').toLowerCase().match(/../g)!.join(':');
}

/** Like parseMac, but a string that is not a MAC is FERRY_E_BOOT_BAD_MAC. */
export function normalizeMac(input: string): string {
  const mac = parseMac(input);
  if (mac === undefined) {
    throw new FerryError('FERRY_E_BOOT_BAD_MAC', `"${input}" is not a MAC address (six bytes in hex, like 52:54:00:12:34:56)`, {
      details: { mac: input },
      hint: 'give the MAC as aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff or aabbccddeeff',
    });
  }
  return mac;
}

/** The kernel's BOOTIF value (as pxelinux's IPAPPEND 2 writes it): `01-aa-bb-cc-dd-ee-ff`. */
export function bootifOf(mac: string): string {
  return '01-' + normalizeMac(mac).replace(/:/g, '-');
}
