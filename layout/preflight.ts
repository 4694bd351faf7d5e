/**
 * Check before the first write: pure decisions over what is known of a node's disks, shared by
 * the installer (installer/disk/in-use.ts probes the disks on the node and calls
 * diskUseProblems just before anything is written) and the server (armChecks, when a node is
 * armed or `ferry deploy --check` asks). Every problem is reported at once, each with its code.
 */
import { ValidationError, type Problem } from '../common/errors.js';
import { nodeInputProblems } from '../common/inputs.js';
import { readLayout } from './parse.js';
import { planDisks } from './plan.js';
import type { DiskPlan, DiskTarget, Layout } from './types.js';

/** What the node found out about one disk the plan writes (installer/disk/in-use.ts probeDisks). */
export interface DiskProbe {
  /** The disk as the plan names it. */
  path: string;
  /** false when no such block device exists now. */
  present: boolean;
  size?: number;
  sectorSize?: number;
  readOnly?: boolean;
  /** File systems mounted from the disk, its partitions or anything built on them. */
  mounts: { device: string; mountpoint: string }[];
  /** Active swap on the disk or its partitions. */
  swaps: string[];
  /** The topmost devices built on it (md arrays, dm volumes); `busy` says why one cannot be released. */
  holders: { device: string; busy?: string }[];
  /** Loop devices whose backing file is the disk or one of its partitions. */
  loops: { loop: string; backing: string }[];
  /** The disk or partitions another process holds open exclusively (open with O_EXCL failed). */
  exclusive: { device: string; error: string }[];
  /** The block device of the running root file system, when it lives on this disk. */
  root?: string;
}

function problem(code: string, device: string, message: string, hint: string): Problem {
  return { severity: 'error', code, message, path: device, hint };
}

/** Pure: every reason not to write the plan's disks, given what the node probed. */
/** The planned facts of a disk the check compares with what was probed. */
export type PlannedDiskFacts = Pick<DiskPlan['disks'][number], 'path' | 'layoutDev' | 'size' | 'sectorSize'>;

export function diskUseProblems(plan: { disks: PlannedDiskFacts[] }, probes: DiskProbe[]): Problem[] {
  const out: Problem[] = [];
  for (const pd of plan.disks) {
    const p = probes.find((x) => x.path === pd.path);
    if (!p || !p.present) {
      out.push(problem('FERRY_E_DISK_NOT_FOUND', pd.path, `${pd.path} (layout disk ${pd.layoutDev}) is not present`, 'check the disk is attached, or plan again against the disks there are'));
      continue;
    }
    if (p.size !== undefined && (p.size !== pd.size || (p.sectorSize !== undefined && p.sectorSize !== pd.sectorSize))) {
      out.push(problem('FERRY_E_DISK_CHANGED', pd.path, `${pd.path} is not the disk the plan was made for: it has ${p.size} bytes in ${p.sectorSize}-byte sectors, the plan assumed ${pd.size} bytes in ${pd.sectorSize}-byte sectors`, 'plan again against the disks as they are (ferry layout plan --disk DEV)'));
    }
    if (p.readOnly) out.push(problem('FERRY_E_DISK_IN_USE', pd.path, `${pd.path} is read-only`, 'make it writable (blockdev --setrw, the write-protect switch) or choose another disk'));
    if (p.root) out.push(problem('FERRY_E_DISK_HOLDS_ROOT', pd.path, `${pd.path} holds the running system's root file system (${p.root})`, 'choose another disk; Ferry never overwrites the disk it runs from'));
    if (p.mounts.length) {
      out.push(problem('FERRY_E_DISK_MOUNTED', pd.path, `${pd.path} is in use: ${p.mounts.map((m) => `${m.device} on ${m.mountpoint}`).join(', ')} ${p.mounts.length === 1 ? 'is' : 'are'} mounted from it`, 'unmount them first; Ferry never writes to a disk with mounted file systems, --yes or not'));
    }
    if (p.swaps.length) out.push(problem('FERRY_E_DISK_IN_USE', pd.path, `${pd.path} is in use: ${p.swaps.join(', ')} ${p.swaps.length === 1 ? 'is' : 'are'} active swap`, `swapoff ${p.swaps.join(' ')} first, or choose another disk`));
    for (const h of p.holders.filter((x) => x.busy)) {
      out.push(problem('FERRY_E_DISK_IN_USE', pd.path, `${pd.path} is in use: ${h.device} is built on it and ${h.busy}`, `release ${h.device} (unmount what uses it, then mdadm --stop or vgchange -an), or choose another disk`));
    }
    for (const l of p.loops) {
      out.push(problem('FERRY_E_DISK_BACKS_LOOP', pd.path, `${pd.path} is in use: loop device ${l.loop} reads and writes ${l.backing}`, `detach it first (umount what is mounted from ${l.loop}, then losetup -d ${l.loop}), or choose another disk`));
    }
    for (const x of p.exclusive) {
      out.push(problem('FERRY_E_DISK_OPEN_EXCLUSIVE', pd.path, `${x.device} is held open exclusively by another program (open with O_EXCL: ${x.error})`, `find who holds it (fuser -v ${x.device}, a virtual machine, a database, another install) and stop it, or choose another disk`));
    }
  }
  return out;
}

/** Throw one error listing every problem; its code is the first problem's (the most common case is one). */
export function refuseProblems(what: string, problems: Problem[]): void {
  const errors = problems.filter((p) => p.severity === 'error');
  if (errors.length) throw new ValidationError(errors[0].code, what, problems);
}

export interface ArmCheckInput {
  layoutXml: string;
  layoutSource?: string;
  /** The node's --disk-map. */
  diskMap?: Record<string, string>;
  /** The disks the node reported, when the server knows them. */
  hardware?: DiskTarget[];
  /** What the node probed of them, when known. */
  probes?: DiskProbe[];
  /** The deployment's merged inputs and the node's name: hostname and network.* land in files. */
  inputs?: Record<string, string>;
  nodeName?: string;
}

/**
 * Pure: what the server can check when a node is armed, with the same functions the installer
 * runs: the layout reads without errors, has a root file system, the disk map names layout
 * disks, the inputs that land in files (hostname, network.*) are valid, and (when the node's disks are known) the layout plans onto them and they are free.
 */
export function armChecks(input: ArmCheckInput): { layout?: Layout; plan?: DiskPlan; problems: Problem[] } {
  const { layout, problems } = readLayout(input.layoutXml, { file: input.layoutSource });
  const out = [...problems];
  if (input.nodeName !== undefined) out.push(...nodeInputProblems(input.inputs ?? {}, input.nodeName));
  if (!layout) return { problems: out };
  if (!layout.filesystems.some((f) => f.mp === '/')) {
    out.push({ severity: 'error', code: 'FERRY_E_LAYOUT_NO_ROOT', path: '/config', message: 'the layout has no <fsinfo> with mp="/": the installed system would have no root file system', hint: 'add <fsinfo real_dev="…" mp="/" fs="ext4"/> for the root file system' });
  }
  for (const k of Object.keys(input.diskMap ?? {})) {
    if (!layout.disks.some((d) => d.dev === k)) {
      out.push({ severity: 'error', code: 'FERRY_E_DISK_MAP', path: `diskMap.${k}`, message: `the disk map names ${k}, which is not a disk of the layout (it has ${layout.disks.map((d) => d.dev).join(', ')})`, hint: 'map the layout\'s own disk names (ferry node set NODE --disk-map /dev/sda=/dev/vda)' });
    }
  }
  if (out.some((p) => p.severity === 'error')) return { layout, problems: out };
  if (!input.hardware) {
    out.push({ severity: 'warning', code: 'FERRY_W_ARM_NO_HARDWARE', message: 'the server knows nothing of this node\'s disks: whether the layout fits them and whether they are free is checked on the node, before anything is written', hint: 'nothing to do; the node refuses a disk that is too small or in use before its first write' });
    return { layout, problems: out };
  }
  let plan: DiskPlan | undefined;
  try {
    plan = planDisks(layout, input.hardware, { map: input.diskMap });
  } catch (e) {
    if (e instanceof ValidationError) out.push(...e.problems.filter((p) => !out.includes(p)));
    else throw e;
  }
  if (plan && input.probes) out.push(...diskUseProblems(plan, input.probes));
  return { layout, plan, problems: out };
}
