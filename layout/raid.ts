/**
 * Software RAID arithmetic: the size an array offers, the module it needs, the data offset used.
 */
import { MiB } from '../common/units.js';
import type { RaidLevel } from './types.js';

export const RAID_MODULE: Record<RaidLevel, string> = { linear: 'linear', raid0: 'raid0', raid1: 'raid1', raid4: 'raid456', raid5: 'raid456', raid6: 'raid456', raid10: 'raid10' };

/** Data offset mdadm is told to use (explicit, so array sizes are exact). */
export const MD_DATA_OFFSET = MiB;

export function raidSize(level: RaidLevel, n: number, comp: bigint): bigint {
  const k = BigInt(n);
  switch (level) {
    case 'raid1': return comp;
    case 'raid0': case 'linear': return comp * k;
    case 'raid4': case 'raid5': return comp * (k - 1n);
    case 'raid6': return comp * (k - 2n);
    case 'raid10': return (comp * k) / 2n;
  }
}
