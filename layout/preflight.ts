/**
 * Check before the first write: pure decisions over what is known of a node's disks, shared by
 * the installer (installer/disk/in-use.ts probes the disks on the node and calls
 * diskUseProblems just before anything is written) and the server (armChecks, when a node is
 * armed or `ferry deploy --check` asks). Every problem is reported at once, each with its code.
 */
import { ValidationError, type Problem } from '../common/errors.js';
import { nodeInputProblems } from '../common/inputs.js';
import type { CustomizationItem } from '../common/protocol.js';
import { placeholders } from '../common/template.js';
import { didYouMean } from './values.js';
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
  /** The image's customization items and the template values the node will have (common/template.ts). */
  customizations?: readonly CustomizationItem[];
  templateValues?: Record<string, string>;
  /** The image's tree (the server's layer index), when known, and its name for messages. */
  tree?: ImagePaths;
  imageName?: string;
}

/** Which disk of the node's stored hardware a layout disk was planned onto. */
export interface ArmDiskChoice {
  layoutDisk: string;
  disk: string;
  size: number;
  serial?: string;
}

/**
 * Pure: what the server can check when a node is armed, with the same functions the installer
 * runs: the layout reads without errors, has a root file system, the disk map names layout
 * disks, the inputs that land in files (hostname, network.*) are valid, and (when the node's disks are known) the layout plans onto them and they are free.
 */
export function armChecks(input: ArmCheckInput): { layout?: Layout; plan?: DiskPlan; disks?: ArmDiskChoice[]; problems: Problem[] } {
  const r = armLayoutChecks(input);
  // The image's items are checked whatever the layout's state: every problem at once.
  if (input.customizations) r.problems.push(...customizationProblems(input.customizations, input.templateValues ?? {}, input.tree, input.imageName));
  return r;
}

function armLayoutChecks(input: ArmCheckInput): { layout?: Layout; plan?: DiskPlan; disks?: ArmDiskChoice[]; problems: Problem[] } {
  const { layout, problems } = readLayout(input.layoutXml, { file: input.layoutSource });
  const out = [...problems];
  if (input.nodeName !== undefined) out.push(...nodeInputProblems(input.inputs ?? {}, input.nodeName));
  // The layout's own errors stop the checks that need a readable layout; the inputs' do not.
  const layoutErrors = () => out.some((p) => p.severity === 'error' && (problems.includes(p) || p.code === 'FERRY_E_LAYOUT_NO_ROOT' || p.code === 'FERRY_E_DISK_MAP'));
  if (!layout) return { problems: out };
  if (!layout.filesystems.some((f) => f.mp === '/')) {
    out.push({ severity: 'error', code: 'FERRY_E_LAYOUT_NO_ROOT', path: '/config', message: 'the layout has no <fsinfo> with mp="/": the installed system would have no root file system', hint: 'add <fsinfo real_dev="…" mp="/" fs="ext4"/> for the root file system' });
  }
  for (const k of Object.keys(input.diskMap ?? {})) {
    if (!layout.disks.some((d) => d.dev === k)) {
      out.push({ severity: 'error', code: 'FERRY_E_DISK_MAP', path: `diskMap.${k}`, message: `the disk map names ${k}, which is not a disk of the layout (it has ${layout.disks.map((d) => d.dev).join(', ')})`, hint: 'map the layout\'s own disk names (ferry node set NODE --disk-map /dev/sda=/dev/vda)' });
    }
  }
  if (layoutErrors()) return { layout, problems: out };
  if (!input.hardware) {
    out.push({ severity: 'warning', code: 'FERRY_W_ARM_NO_HARDWARE', message: 'the node has reported no hardware (no hw.* properties): whether the layout fits its disks and whether they are free is checked on the node, before anything is written', hint: 'nothing to do; the node refuses a disk that is too small or in use before its first write, and reports its hardware at each install (ferry-installer inventory)' });
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
  const disks = plan?.disks.map((pd) => {
    const hw = input.hardware!.find((h) => h.path === pd.path);
    return { layoutDisk: pd.layoutDev, disk: pd.path, size: pd.size, serial: hw?.serial };
  });
  return { layout, plan, disks, problems: out };
}

// ------------------------------------------------------------------------------------------
// Customization items against the image and the node's values

/** What the server knows of an image's tree (layers/path-index.ts ImageTree). */
export interface ImagePaths {
  kind(p: string): 'file' | 'dir' | 'symlink' | 'other' | undefined;
  list(dir: string): string[];
}

function normPath(p: string): string {
  return '/' + p.split('/').filter((c) => c && c !== '.').join('/');
}

/**
 * The path of the image closest to `p` when `p` looks like a misspelling of it: each missing
 * component replaced by the closest name in its directory, as long as the result exists.
 */
export function nearPath(tree: ImagePaths, p: string): string | undefined {
  const parts = normPath(p).split('/').filter(Boolean);
  let at = '';
  let changed = false;
  for (const c of parts) {
    const next = `${at}/${c}`;
    if (tree.kind(next) !== undefined) {
      at = next;
      continue;
    }
    const near = didYouMean(c, tree.list(at || '/'));
    if (!near) return undefined;
    at = `${at}/${near}`;
    changed = true;
  }
  return changed ? at : undefined;
}

/**
 * Pure: the problems the installer would meet running `items`, known before arming: a template
 * placeholder (in template items and regexp replacements) the node's values lack, a regexp item
 * on a file the image does not hold, a file or template item onto a directory. `values` are the
 * template values the installer will have (common/template.ts templateValues); `tree` is the
 * image's tree, when the server has its index.
 */
export function customizationProblems(items: readonly CustomizationItem[], values: Record<string, string>, tree?: ImagePaths, image = 'the image'): Problem[] {
  const out: Problem[] = [];
  // What earlier items write: a regexp after a file item edits the new file.
  const written = new Set<string>(['/etc/hostname', '/etc/hosts', '/etc/machine-id', '/etc/fstab']);
  const names = Object.keys(values);
  items.forEach((item, i) => {
    const where = `customizations[${i}]`;
    const what = `${item.kind} item ${i + 1}${'path' in item ? ` (${item.path})` : ''}`;
    const text = item.kind === 'template' ? item.template : item.kind === 'regexp' ? item.replacement : undefined;
    for (const name of text === undefined ? [] : placeholders(text)) {
      if (Object.hasOwn(values, name)) continue;
      const near = didYouMean(name, names);
      out.push({
        severity: 'error', code: 'FERRY_E_ARM_PLACEHOLDER', path: `${where}.${item.kind === 'template' ? 'template' : 'replacement'}`,
        message: `${what} uses {{ ${name} }}, which has no value for this node${near ? ` (did you mean {{ ${near} }}?)` : ''}`,
        hint: `set it as an input of the node or the deployment (ferry node set NODE --set ${name}=VALUE, or ferry deploy … --set ${name}=VALUE)${near ? `, or write {{ ${near} }}` : ''}`,
      });
    }
    if (!tree || !('path' in item)) return;
    const p = normPath(item.path);
    const kind = written.has(p) ? 'file' : tree.kind(p);
    if (item.kind === 'regexp') {
      if (kind === undefined) {
        const near = nearPath(tree, p);
        out.push({
          severity: 'error', code: 'FERRY_E_ARM_IMAGE_PATH', path: `${where}.path`,
          message: `${what}: ${image} holds no ${p}${near ? ` (did you mean ${near}?)` : ''}`,
          hint: near ? `correct the path to ${near} (ferry image customize)` : 'correct the path, or put a "file" item that creates it before this one',
        });
      } else if (kind === 'dir') {
        out.push({ severity: 'error', code: 'FERRY_E_ARM_IMAGE_PATH', path: `${where}.path`, message: `${what}: ${p} is a directory in ${image}, not a file`, hint: 'name a file inside it' });
      }
    } else if (item.kind === 'file' || item.kind === 'template') {
      if (kind === 'dir') {
        out.push({ severity: 'error', code: 'FERRY_E_ARM_IMAGE_PATH', path: `${where}.path`, message: `${what}: ${p} is a directory in ${image}; the item would write a file over it`, hint: 'name a file path, not a directory' });
      } else if (kind === undefined) {
        const parent = p.slice(0, p.lastIndexOf('/')) || '/';
        const pk = tree.kind(parent);
        if (pk === undefined) {
          const near = nearPath(tree, parent);
          out.push({
            severity: 'warning', code: 'FERRY_W_ARM_IMAGE_DIR', path: `${where}.path`,
            message: `${what}: ${image} has no directory ${parent}; the installer will create it${near ? ` (did you mean ${near}?)` : ''}`,
            hint: near ? `if ${near} was meant, correct the path` : 'nothing to do if the directory is new',
          });
        } else if (pk === 'file' || pk === 'other') {
          out.push({ severity: 'error', code: 'FERRY_E_ARM_IMAGE_PATH', path: `${where}.path`, message: `${what}: ${parent} is a file in ${image}, not a directory`, hint: 'correct the path' });
        }
      }
      written.add(p);
    }
  });
  return out;
}
