/**
 * What one machine boots, decided once for every way of asking: iPXE's
 * `GET /boot/ipxe?mac=` and pxelinux's `pxelinux.cfg/01-MAC` over TFTP. An armed
 * node boots the installer; any other known node boots its disk; an unknown MAC
 * boots its disk and is recorded as discovered.
 */
import type { DataDir } from '../context.js';
import { activeDeploymentForNode } from '../db/deployments.js';
import { nodeByMac, recordDiscovered } from '../db/inventory.js';
import type { BootDecision } from './ipxe.js';

export interface DecideOptions {
  publicUrl: string;
  /** Kernel arguments for every install boot (`ferry serve --kernel-arg`). */
  kernelArgs: string[];
  /** The asking machine's address, recorded with a discovered MAC. */
  remoteAddress?: string;
}

/** `mac` must be normalised (aa:bb:cc:dd:ee:ff). `discovered` says it was recorded as new. */
export function bootDecision(data: DataDir, mac: string, o: DecideOptions): BootDecision & { discovered?: boolean } {
  const node = nodeByMac(data, mac);
  if (!node) {
    recordDiscovered(data, mac, o.remoteAddress);
    return { action: 'local', mac, reason: 'unknown machine (recorded as discovered)', discovered: true };
  }
  const dep = node.boot_action === 'install' ? activeDeploymentForNode(data, node.id) : undefined;
  if (!dep) return { action: 'local', mac, label: node.name, reason: node.boot_action === 'install' ? 'no deployment armed or it expired' : 'installed' };
  const props = JSON.parse(node.properties) as Record<string, string>;
  const extraArgs = [...o.kernelArgs, ...(props['boot.args'] ? props['boot.args'].split(/\s+/).filter(Boolean) : [])];
  return { action: 'install', serverUrl: o.publicUrl, token: dep.token, mac, label: node.name, extraArgs };
}
