/**
 * Trust at install time, the server's half: the `ssh-authorize-ferry` customization item becomes
 * an `authorized-keys` item holding Ferry's public key (DATA/ssh/id_ed25519.pub) when the
 * installer fetches its configuration, and the host keys the installer made and reported are
 * recorded for the node (source `installer`), with the node's SSH address when it has none.
 */
import type { CustomizationItem } from '../../common/schema/api.js';
import { FerryError } from '../../common/errors.js';
import type { DataDir } from '../context.js';
import { ferryKey, parseHostKey } from './keys.js';
import { formatAddress, parseTarget } from './target.js';
import { recordHostKey } from './trust.js';

/**
 * Pure: every ssh-authorize-ferry item as an authorized-keys item with `publicKey`. The item is on
 * by default for new images, so an image without the user (no root in /etc/passwd) gets a
 * warning at install (missingUser: warn), not a failed install.
 */
export function expandFerryKeyItems(items: CustomizationItem[], publicKey: string): CustomizationItem[] {
  return items.map((i) => (i.kind === 'ssh-authorize-ferry' ? { kind: 'authorized-keys', user: i.user ?? 'root', keys: [publicKey.trim()], missingUser: 'warn' as const } : i));
}

/**
 * Pure: new images authorize Ferry's key by default (image import, capture and commit): the items
 * with an ssh-authorize-ferry item added at the end unless one is there or `off`
 * (--no-authorize-ferry). An image without root then warns at install (FERRY_W_AUTHORIZE_NO_USER).
 */
export function withAuthorizeFerryItem(items: CustomizationItem[] | undefined, off = false): CustomizationItem[] {
  const list = items ?? [];
  if (off || list.some((i) => i.kind === 'ssh-authorize-ferry')) return list;
  return [...list, { kind: 'ssh-authorize-ferry' }];
}

/** An image manifest whose ssh-authorize-ferry items carry Ferry's public key (made at first use): for the installer's configuration and for restore media. */
export function withFerryKey<M extends { customizations?: CustomizationItem[] }>(d: DataDir, image: M): M {
  const items = image.customizations ?? [];
  if (!items.some((i) => i.kind === 'ssh-authorize-ferry')) return image;
  return { ...image, customizations: expandFerryKeyItems(items, ferryKey(d.dir).publicKey) };
}

/** Record the reported host keys for the node in place of its former ones; set its address when unset. Returns how many keys. */
export function recordInstalledHostKeys(d: DataDir, node: { id: number; name: string; deployment: number }, body: { keys: string[]; address?: string }, peer?: string): { recorded: number; address?: string } {
  const keys = body.keys.map((line) => ({ fp: parseHostKey(line, 'a reported SSH host key'), line: line.trim().split(/\s+/).slice(0, 2).join(' ') }));
  let address: string | undefined;
  const raw = body.address ?? peerAddress(peer);
  if (raw) {
    try {
      address = formatAddress(parseTarget(raw, 'address', { allowUser: false }));
    } catch (e) {
      throw new FerryError('FERRY_E_BAD_REQUEST', `deployment ${node.deployment}: the reported address "${raw}" is not HOST[:PORT]`, { details: { address: raw }, hint: 'report a host name or IP address', cause: e });
    }
  }
  d.write(() => {
    // The machine was just installed: the keys of its former system are gone from it.
    d.db.prepare('DELETE FROM ssh_host_keys WHERE node_id = ?').run(node.id);
    for (const k of keys) recordHostKey(d, { nodeId: node.id, node: node.name }, k.fp, k.line, 'installer');
    const row = d.db.prepare('SELECT address FROM nodes WHERE id = ?').get(node.id) as { address: string | null } | undefined;
    if (address && row && !row.address) d.db.prepare('UPDATE nodes SET address = ? WHERE id = ?').run(address, node.id);
    else address = row?.address ?? undefined;
    d.audit(`deployment:${node.deployment}`, 'node.ssh-host-keys', node.name, { fingerprints: keys.map((k) => k.fp), address });
  });
  return { recorded: keys.length, address };
}

/** The peer's IP as a HOST (IPv4-mapped IPv6 unwrapped, IPv6 in brackets). */
export function peerAddress(peer: string | undefined): string | undefined {
  if (!peer) return undefined;
  const p = peer.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
  return p.includes(':') ? `[${p}]` : p;
}
