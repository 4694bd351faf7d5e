/**
 * Every node its own identity, on a real disk (issue 17): the adaptive layout (xfs, ext4,
 * btrfs, swap on GPT) applied to a loop device for two deployments, then for a redeploy of
 * the first. What the disk holds afterwards, read back with blkid and sfdisk: the two
 * deployments share no UUID, PARTUUID or disk GUID; the redeploy gives the first one's again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../common/run.js';
import { parseLayout } from '../../layout/parse.js';
import { planDisks } from '../../layout/plan.js';
import { deploymentSeed } from '../../layout/uuid.js';
import { applyDiskPlan, teardownDiskPlan } from '../../installer/disk/apply.js';
import { discoverDisks } from '../../installer/disk/discover.js';
import { blkid, ROOT, Scratch } from './layout-helpers.js';

const GiB = 1024 ** 3;
let s: Scratch;
beforeAll(() => {
  s = new Scratch();
});
afterAll(async () => {
  await s?.cleanup();
});

interface OnDisk {
  diskId: string;
  /** Per partition: [PARTUUID, file system UUID]. */
  parts: Record<string, [string, string]>;
}

describe('identities written to a loop device', () => {
  it('two deployments differ everywhere; a redeploy of the first reproduces it', async () => {
    const { dev } = await s.loop(2 * GiB);
    const layout = parseLayout(readFileSync(join(ROOT, 'layouts/adaptive.xml'), 'utf8'));
    const install = async (deployment: { id: number; identity: string }): Promise<OnDisk> => {
      const root = s.root();
      const plan = planDisks(layout, await discoverDisks({ only: [dev] }), { seed: deploymentSeed(deployment, 'node1', layout.digest) });
      await applyDiskPlan(plan, { root, yes: true });
      await teardownDiskPlan(plan, root);
      const table = JSON.parse((await run(['sfdisk', '-J', dev])).stdout).partitiontable;
      const parts: OnDisk['parts'] = {};
      for (const p of plan.disks[0].partitions) {
        const b = await blkid(p.device);
        parts[p.device] = [b.PART_ENTRY_UUID, b.UUID ?? ''];
      }
      // What the disk holds is what the plan said.
      expect(table.id).toBe(plan.disks[0].diskId);
      for (const p of plan.disks[0].partitions) expect(parts[p.device][0]).toBe(p.partUuid!.toLowerCase());
      for (const f of plan.filesystems.filter((x) => x.format)) expect(parts[f.device][1], f.device).toBe(f.uuid);
      return { diskId: table.id, parts };
    };
    const first = await install({ id: 1, identity: '11'.repeat(16) });
    const second = await install({ id: 2, identity: '22'.repeat(16) });
    const redeploy = await install({ id: 3, identity: '11'.repeat(16) });

    const all = (o: OnDisk) => [o.diskId, ...Object.values(o.parts).flat().filter(Boolean)];
    expect(all(first).length).toBe(1 + 5 + 4); // disk, 5 partitions, 4 file systems (bios_grub has none)
    expect(all(first).filter((x) => all(second).includes(x))).toEqual([]);
    expect(redeploy).toEqual(first);
  });
});
