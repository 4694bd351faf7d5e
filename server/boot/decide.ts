/**
 * What one machine boots, decided once for every way of asking: iPXE's
 * `GET /boot/ipxe?mac=` and pxelinux's `pxelinux.cfg/01-MAC` over TFTP. An armed
 * node boots the installer; any other known node boots its disk; an unknown MAC
 * is recorded as discovered and boots its disk, or, with `ferry serve --discover`, the boot
 * environment in inventory mode with a discovery token bound to that MAC (server/db/discovery.ts).
 */
import type { DataDir } from '../context.js';
import { activeDeploymentForNode, IN_FLIGHT_STATUSES, listDeployments } from '../db/deployments.js';
import { nodeByMac, recordDiscovered } from '../db/inventory.js';
import { mintDiscoveryToken } from '../db/discovery.js';
import type { BootDecision } from './ipxe.js';

export interface DecideOptions {
  publicUrl: string;
  /** Kernel arguments for every install boot (`ferry serve --kernel-arg`). */
  kernelArgs: string[];
  /** The asking machine's address, recorded with a discovered MAC. */
  remoteAddress?: string;
  /** `ferry serve --discover`: unknown MACs boot the inventory mode, then power off or wait. */
  discover?: DiscoverOptions;
}

export interface DiscoverOptions {
  finish: 'poweroff' | 'wait';
}

/** Pure: what an unknown MAC boots, and the kernel arguments of its discovery boot. */
export function unknownBootOf(discover: DiscoverOptions | undefined): { action: 'local'; reason: string } | { action: 'inventory'; reason: string; args: string[] } {
  if (!discover) return { action: 'local', reason: 'unknown machine (recorded as discovered)' };
  return { action: 'inventory', reason: 'unknown machine (discovery boot)', args: [`ferry.finish=${discover.finish === 'wait' ? 'stay' : 'poweroff'}`] };
}

/** What a known node boots next, and why: what `node ls` shows and the boot answers. */
export interface NextBoot {
  action: 'install' | 'local';
  reason: string;
  /** The deployment the installer boots into. */
  deployment?: number;
}

/**
 * Pure: the next boot of a node from its boot action and its newest deployment (its status as
 * `deploymentInfo` gives it, `expired` included). Only an armed, running or lost deployment
 * that has not expired boots the installer.
 */
export function nextBootOf(bootAction: string, latest?: { id: number; status: string }): NextBoot {
  if (bootAction !== 'install') return { action: 'local', reason: !latest ? 'boot action local' : latest.status === 'success' ? `installed by deployment ${latest.id}` : `deployment ${latest.id} ${latest.status}` };
  if (!latest) return { action: 'local', reason: 'no deployment armed' };
  if ((IN_FLIGHT_STATUSES as readonly string[]).includes(latest.status)) return { action: 'install', reason: `deployment ${latest.id} ${latest.status}`, deployment: latest.id };
  return { action: 'local', reason: `deployment ${latest.id} ${latest.status}` };
}

/** The next boot of a node as the database says now. */
export function nextBoot(data: DataDir, node: { name: string; bootAction: string }): NextBoot {
  return nextBootOf(node.bootAction, listDeployments(data, { node: node.name, limit: 1 })[0]);
}

/** `mac` must be normalised (aa:bb:cc:dd:ee:ff). `discovered` says it was recorded as new. */
export function bootDecision(data: DataDir, mac: string, o: DecideOptions): BootDecision & { discovered?: boolean; next?: NextBoot } {
  const node = nodeByMac(data, mac);
  if (!node) {
    recordDiscovered(data, mac, o.remoteAddress);
    const u = unknownBootOf(o.discover);
    if (u.action === 'local') return { action: 'local', mac, reason: u.reason, discovered: true };
    return { action: 'install', mode: 'inventory', serverUrl: o.publicUrl, token: mintDiscoveryToken(data, mac), mac, extraArgs: [...o.kernelArgs, ...u.args], discovered: true };
  }
  const next = nextBoot(data, { name: node.name, bootAction: node.boot_action });
  const dep = next.action === 'install' ? activeDeploymentForNode(data, node.id) : undefined;
  if (!dep || dep.id !== next.deployment) return { action: 'local', mac, label: node.name, reason: next.action === 'install' ? 'no deployment armed' : next.reason, next };
  const props = JSON.parse(node.properties) as Record<string, string>;
  const extraArgs = [...o.kernelArgs, ...(props['boot.args'] ? props['boot.args'].split(/\s+/).filter(Boolean) : [])];
  return { action: 'install', serverUrl: o.publicUrl, token: dep.token, mac, label: node.name, extraArgs, next };
}
