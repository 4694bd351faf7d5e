/**
 * Node side of "check everything before the first write": does this machine's kernel support
 * what the plan needs (md, device-mapper, each file system type), and is every program the plan
 * and the stages after it run present? The needs come from the pure layout/needs.ts; this module
 * only looks: modules.builtin and /proc/filesystems first, then modprobe for the rest (a module
 * that fails to load stops the install here, not after wipefs). Every problem is returned at
 * once, each with the code FERRY_E_NODE_UNSUPPORTED; nothing here writes a disk.
 */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { type Problem } from '../../common/errors.js';
import { findTool, run, type Runner } from '../../common/run.js';
import { modulesToLoad, parseModulesBuiltin, parseProcFilesystems, planNeeds, type NeedsOptions } from '../../layout/needs.js';
import type { DiskPlan } from '../../layout/types.js';

/** What the check reads of the running system; the real one reads /lib/modules, /proc and PATH. */
export interface KernelView {
  builtin(): string;
  filesystems(): string;
  /** Where a tool runs from, or undefined when it is missing. */
  findTool(name: string): string | undefined;
  runner: Runner;
}

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

export const linuxKernel: KernelView = {
  builtin: () => readOr(`/lib/modules/${release()}/modules.builtin`),
  filesystems: () => readOr('/proc/filesystems'),
  findTool: (name) => findTool(name),
  runner: run,
};

const CODE = 'FERRY_E_NODE_UNSUPPORTED';

/** Every kernel module and tool of the plan this machine lacks (empty: all there). Loads the modules that are needed and not built in. */
export async function supportProblems(plan: Pick<DiskPlan, 'steps' | 'teardown' | 'raids' | 'volumeGroups' | 'filesystems'>, opts: NeedsOptions = {}, k: KernelView = linuxKernel): Promise<Problem[]> {
  const needs = planNeeds(plan, opts);
  const out: Problem[] = [];
  // Tools first: without modprobe there is no loading modules either.
  const missingTools = needs.tools.filter((t) => !k.findTool(t.tool));
  for (const t of missingTools) {
    out.push({
      severity: 'error', code: CODE, path: t.tool,
      message: `the program ${t.tool} is not on this machine (PATH ${process.env.PATH ?? ''}); the plan needs it ${t.why}`,
      hint: t.package ? `install the Debian package ${t.package} (into the boot environment: initrd/packages.txt), or point Ferry at it with FERRY_TOOL_${t.tool.toUpperCase().replace(/[^A-Z0-9]/g, '_')}=PATH` : `install ${t.tool}, or point Ferry at it with FERRY_TOOL_<NAME>=PATH`,
    });
  }
  const load = modulesToLoad(needs.modules, parseModulesBuiltin(k.builtin()), parseProcFilesystems(k.filesystems()));
  if (load.length && missingTools.some((t) => t.tool === 'modprobe')) {
    for (const m of load) out.push({ severity: 'error', code: CODE, path: m.module, message: `kernel module ${m.module} (${m.why}) is not built in and cannot be loaded: modprobe is missing`, hint: 'install kmod, or use a kernel with the module built in' });
    return out;
  }
  for (const m of load) {
    try {
      await k.runner(['modprobe', m.module], { timeoutMs: 60_000 });
    } catch (e) {
      const details = (e as { details?: { stderrTail?: string } }).details;
      const reason = (details?.stderrTail ?? (e as Error).message).trim().split('\n').filter(Boolean).pop() ?? 'modprobe failed';
      out.push({
        severity: 'error', code: CODE, path: m.module,
        message: `kernel module ${m.module} is needed for ${m.why}, and this kernel (${release()}) neither has it built in nor loads it: ${reason}`,
        hint: `boot a kernel with ${m.module} (the boot environment: add its driver set, initrd/; on a host: install its modules package), or give the node a layout without it`,
      });
    }
  }
  return out;
}
