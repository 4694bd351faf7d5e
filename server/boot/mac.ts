/**
 * MAC addresses as network boot sees them: iPXE sends `52:54:00:12:34:56`
 * (`${netX/mac}`) or `52-54-00-12-34-56` (`:hexhyp`), pxelinux asks for
 * `01-52-54-00-12-34-56`, the kernel's BOOTIF carries the same. One canonical
 * form (lower case, colons) is stored; the others are derived from it.
 */
import { FerryError } from '../../common/errors.js';

const MAC_RE = /^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$/i;

/** `AA-BB-CC-DD-EE-FF`, `aabb.ccdd.eeff`, `01-aa-bb-…` (BOOTIF) → `aa:bb:cc:dd:ee:ff`. */
export function normalizeMac(input: string): string {
  let s = input.trim();
  // BOOTIF / pxelinux form: ARP hardware type 1 (Ethernet) in front.
  if (/^01-([0-9a-f]{2}-){5}[0-9a-f]{2}$/i.test(s)) s = s.slice(3);
  // Cisco dotted form.
  if (/^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/i.test(s)) s = s.replace(/\./g, '');
  if (!MAC_RE.test(s)) {
    throw new FerryError('FERRY_E_BOOT_BAD_MAC', `"${input}" is not a MAC address (six bytes in hex, like 52:54:00:12:34:56)`, {
      details: { mac: input },
      hint: 'give the MAC as aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabbccddeeff',
    });
  }
  const hex = s.replace(/[:-]/g, '').toLowerCase();
  return hex.match(/../g)!.join(':');
}

/** The kernel's BOOTIF value (as pxelinux's IPAPPEND 2 writes it): `01-aa-bb-cc-dd-ee-ff`. */
export function bootifOf(mac: string): string {
  return '01-' + normalizeMac(mac).replace(/:/g, '-');
}

/** pxelinux's per-machine configuration file, relative to the TFTP root. */
export function pxelinuxConfigPath(mac: string): string {
  return 'pxelinux.cfg/' + bootifOf(mac);
}
