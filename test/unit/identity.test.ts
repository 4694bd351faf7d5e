/**
 * Every node its own identity (issue 17): the file system, RAID and GPT UUIDs derive from the
 * deployment's identity seed. Two deployments never share them; a redeploy of a record
 * reproduces them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseLayout } from '../../layout/parse.js';
import { planDisks } from '../../layout/plan.js';
import { deploymentSeed, seededGuid, seededMbrId, UUID_RE } from '../../layout/uuid.js';
import type { DiskPlan, DiskTarget } from '../../layout/types.js';
import { INSTALL_ROUTES, type InstallConfig } from '../../common/protocol.js';
import { bearer, fixture, LAYOUT, type Fixture } from './server/app-fixture.js';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (f: string) => parseLayout(readFileSync(join(ROOT, f), 'utf8'), { file: f });
const GiB = 1024 ** 3;
const disk = (path: string, gib: number): DiskTarget => ({ path, size: gib * GiB, sectorSize: 512 });

/** Every identifier a plan gives the node: file systems, arrays, disk ids, partition GUIDs. */
function identities(p: DiskPlan): string[] {
  return [
    ...p.filesystems.filter((f) => f.format && f.uuid).map((f) => f.uuid!),
    ...p.raids.map((r) => r.uuid),
    ...p.disks.map((d) => d.diskId!),
    ...p.disks.flatMap((d) => d.partitions.filter((x) => x.partUuid).map((x) => x.partUuid!)),
  ];
}

describe('identity seed derivation', () => {
  const layoutDigest = 'sha256:' + 'ab'.repeat(32);

  it('differs between deployments and is the same for the same record', () => {
    const a = deploymentSeed({ id: 1, identity: '0'.repeat(32) }, 'n1', layoutDigest);
    expect(deploymentSeed({ id: 7, identity: '0'.repeat(32) }, 'n2', layoutDigest)).toBe(a);
    expect(deploymentSeed({ id: 1, identity: '1'.repeat(32) }, 'n1', layoutDigest)).not.toBe(a);
    expect(deploymentSeed({ id: 1, identity: '0'.repeat(32) }, 'n1', 'sha256:' + 'cd'.repeat(32))).not.toBe(a);
    // A server without identity seeds: the deployment id and node name still separate installs.
    const old = deploymentSeed({ id: 1 }, 'n1', layoutDigest);
    expect(deploymentSeed({ id: 2 }, 'n1', layoutDigest)).not.toBe(old);
    expect(deploymentSeed({ id: 1 }, 'n2', layoutDigest)).not.toBe(old);
    expect(deploymentSeed({ id: 1 }, 'n1', layoutDigest)).toBe(old);
  });

  it('spells GPT GUIDs and MBR ids as sfdisk takes them', () => {
    expect(seededGuid('s', 'k').toLowerCase()).toMatch(UUID_RE);
    expect(seededGuid('s', 'k')).toBe(seededGuid('s', 'k').toUpperCase());
    expect(seededMbrId('s', 'k')).toMatch(/^0x[0-9a-f]{8}$/);
    expect(seededMbrId('s', 'k')).not.toBe(seededMbrId('s', 'k2'));
  });

  it('a GPT plan seeds the disk GUID and every partition GUID with sfdisk, after parted and before the rescan', () => {
    const layout = read('layouts/uefi-gpt.xml');
    const p = planDisks(layout, [disk('/dev/vda', 8)], { seed: deploymentSeed({ id: 1, identity: 'a'.repeat(32) }, 'n1', layout.digest) });
    const d = p.disks[0];
    expect(d.diskId).toMatch(/^[0-9A-F-]{36}$/);
    const kinds = p.steps.map((s) => s.argv.slice(0, 2).join(' '));
    const parted = kinds.indexOf('parted -s');
    expect(p.steps[parted + 1].argv).toEqual(['sfdisk', '--no-reread', '--no-tell-kernel', '--disk-id', '/dev/vda', d.diskId]);
    for (const [i, part] of d.partitions.entries()) {
      expect(p.steps[parted + 2 + i].argv).toEqual(['sfdisk', '--no-reread', '--no-tell-kernel', '--part-uuid', '/dev/vda', String(part.number), part.partUuid]);
    }
    expect(p.steps[parted + 2 + d.partitions.length].kind).toBe('rescan');
  });

  it('an msdos plan seeds the MBR disk id (partition ids follow from it)', () => {
    const layout = read('layouts/bios-msdos.xml');
    const p = planDisks(layout, [disk('/dev/vda', 8)], { seed: 'x' });
    expect(p.disks[0].diskId).toMatch(/^0x[0-9a-f]{8}$/);
    expect(p.disks[0].partitions.every((x) => x.partUuid === undefined)).toBe(true);
    expect(p.commands).toContainEqual(['sfdisk', '--no-reread', '--no-tell-kernel', '--disk-id', '/dev/vda', p.disks[0].diskId]);
  });

  it('two deployments of one layout share no identifier; the same record gives the same ones', () => {
    for (const [file, disks] of [['layouts/raid1-lvm.xml', [disk('/dev/vda', 20), disk('/dev/vdb', 20)]], ['layouts/uefi-gpt.xml', [disk('/dev/vda', 8)]], ['layouts/raid1.xml', [disk('/dev/sda', 8), disk('/dev/sdb', 8)]]] as const) {
      const layout = read(file);
      const plan = (identity: string) => planDisks(layout, [...disks], { seed: deploymentSeed({ id: 3, identity }, 'n1', layout.digest) });
      const a = identities(plan('1'.repeat(32)));
      const b = identities(plan('2'.repeat(32)));
      expect(a.length, file).toBeGreaterThan(2);
      expect(new Set(a).size, file).toBe(a.length);
      expect(a.filter((x) => b.includes(x)), file).toEqual([]);
      expect(identities(plan('1'.repeat(32))), file).toEqual(a);
      // The mkfs commands carry the file systems' UUIDs.
      const p = plan('1'.repeat(32));
      // (mkfs.fat -i takes the FAT volume id without its dash).
      for (const f of p.filesystems.filter((x) => x.format && x.uuid)) {
        const id = /^[0-9A-F]{4}-[0-9A-F]{4}$/.test(f.uuid!) ? f.uuid!.replace('-', '') : f.uuid!;
        expect(p.commands.some((c) => c.includes(f.device) && c.some((w) => w.includes(id))), `${file} ${f.device}`).toBe(true);
      }
    }
  });
});

describe('the server keeps an identity seed per deployment record', () => {
  let f: Fixture;
  const api = (method: string, path: string, payload?: unknown) =>
    f.app.inject({ method: method as any, url: '/api/v1/admin/' + path, headers: bearer(f.admin), ...(payload !== undefined ? { payload: payload as object } : {}) });
  const config = async (token: string): Promise<InstallConfig> => (await f.app.inject({ method: 'GET', url: INSTALL_ROUTES.config, headers: bearer(token) })).json();

  beforeAll(async () => {
    f = await fixture();
    f.image('base', [await f.layer(Buffer.from('layer bytes'))]);
    for (const [n, mac] of [['id1', '52:54:00:00:17:01'], ['id2', '52:54:00:00:17:02']]) {
      expect((await api('POST', 'nodes', { name: n, macs: [mac], image: 'base', layout: LAYOUT })).statusCode).toBe(201);
    }
  });
  afterAll(() => f?.close());

  it('fresh arms draw fresh seeds; a redeploy hands out its record\'s seed again', async () => {
    const a = (await api('POST', 'deployments', { node: 'id1' })).json().deployment;
    const ca = await config(a.token);
    expect(ca.deployment.identity).toMatch(/^[0-9a-f]{32}$/);
    const b = (await api('POST', 'deployments', { node: 'id2' })).json().deployment;
    const cb = await config(b.token);
    expect(cb.deployment.identity).not.toBe(ca.deployment.identity);
    // Arming the same node again is a new deployment: a new identity.
    const a2 = (await api('POST', 'deployments', { node: 'id1' })).json().deployment;
    const ca2 = await config(a2.token);
    expect(ca2.deployment.identity).not.toBe(ca.deployment.identity);
    // A redeploy of record a: the same identity, so the same UUIDs on the node.
    const r = (await api('POST', `deployments/${a.id}/redeploy`)).json().deployment;
    const cr = await config(r.token);
    expect(cr.deployment.id).not.toBe(a.id);
    expect(cr.deployment.identity).toBe(ca.deployment.identity);
    const seed = (c: InstallConfig) => deploymentSeed(c.deployment, c.node.name, c.layout.digest);
    expect(seed(cr)).toBe(seed(ca));
    expect(seed(ca2)).not.toBe(seed(ca));
  });
});

describe('removable disks are never taken in order', () => {
  const layout = () => read('layouts/bios-msdos.xml');
  const usb: DiskTarget = { path: '/dev/sdb', size: 8 * GiB, sectorSize: 512, removable: true };
  it('a removable disk is skipped; the fixed one is used', () => {
    const p = planDisks(layout(), [usb, disk('/dev/vda', 8)], { seed: 's' });
    expect(p.disks.map((d) => d.path)).toEqual(['/dev/vda']);
  });
  it('only a removable disk: refused, saying why and how to name it', () => {
    let e: any;
    try {
      planDisks(layout(), [usb], { seed: 's' });
    } catch (x) {
      e = x;
    }
    const p = e?.problems?.find((x: any) => x.code === 'FERRY_E_DISK_MISSING');
    expect(p?.message).toMatch(/removable \/dev\/sdb not used unless named/);
  });
  it('named by --map, or chosen with --disk, it is used', () => {
    expect(planDisks(layout(), [usb, disk('/dev/vda', 8)], { seed: 's', map: { '/dev/sda': '/dev/sdb' } }).disks.map((d) => d.path)).toEqual(['/dev/sdb']);
    expect(planDisks(layout(), [usb], { seed: 's', chosenDisks: true }).disks.map((d) => d.path)).toEqual(['/dev/sdb']);
  });
});
