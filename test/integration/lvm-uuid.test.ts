/**
 * Seeded LVM PV UUIDs on a real device (issue 17): layouts/lvm.xml planned onto a loop device
 * and applied up to its pvcreate steps (this host's kernel has no device-mapper for vgcreate's
 * volumes; the layouts vm test applies the rest), then `blkid -p` reads the PV's UUID off the
 * disk: it is the plan's, derived from the deployment seed, and another seed gives another.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../common/run.js';
import { parseLayout } from '../../layout/parse.js';
import { planDisks } from '../../layout/plan.js';
import { applyDiskPlan } from '../../installer/disk/apply.js';
import { discoverDisks } from '../../installer/disk/discover.js';
import { blkid, ROOT, Scratch } from './layout-helpers.js';

let s: Scratch;
beforeAll(() => {
  s = new Scratch();
});
afterAll(async () => {
  await s?.cleanup();
});

describe('LVM physical volumes', () => {
  it('pvcreate writes the seeded PV UUID; another seed, another UUID', async () => {
    const { dev } = await s.loop(2 * 1024 ** 3);
    const layout = parseLayout(readFileSync(join(ROOT, 'layouts/lvm.xml'), 'utf8'));
    const seen: string[] = [];
    for (const seed of ['deployment-a', 'deployment-b']) {
      const plan = planDisks(layout, await discoverDisks({ only: [dev] }), { seed });
      const last = plan.steps.map((x) => x.argv[0]).lastIndexOf('pvcreate');
      expect(last).toBeGreaterThan(0);
      const pv = plan.volumeGroups[0].pvs[0];
      try {
        await applyDiskPlan({ ...plan, steps: plan.steps.slice(0, last + 1), teardown: [] }, { root: s.root(), yes: true });
        const b = await blkid(pv);
        expect(b.TYPE).toBe('LVM2_member');
        expect(b.UUID).toBe(plan.volumeGroups[0].pvUuids[0]);
        seen.push(b.UUID);
      } finally {
        await run(['pvremove', '-ff', '-y', pv], { env: { LVM_SUPPRESS_FD_WARNINGS: '1' } }).catch(() => {});
      }
    }
    expect(seen[0]).not.toBe(seen[1]);
  });
});
