/**
 * The install, stage by stage: identify → config → disks → layers → customize → bootloader →
 * finish. Each stage is a module with one small interface (`name`, `run(ctx)`); the runner
 * reports start and end of each, and on failure an error event with the stage, what was being
 * done, and for a command its argv and output tail; then it stops (no retry loop, no reboot).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FerryError, toFerryError } from '../common/errors.js';
import { log } from '../common/log.js';
import { PHASES, formatEvent, throttled, type ProgressEvent, type ProgressSink } from '../common/progress.js';
import type { FinishAction, InstallConfig, InstallResult } from '../common/protocol.js';
import { run } from '../common/run.js';
import { applyBootloader, planBootloader } from './bootloader.js';
import { EventSender, ServerClient } from './client.js';
import { applyCustomization, planCustomization, targetView } from './customize/apply.js';
import type { ApplyDiskPlanFn, DiscoverDisksFn, DiskPlan, Layout, PlanDisksFn, TeardownDiskPlanFn } from './disk/index.js';
import { macFromBootif, pickMac, readInterfaces } from './identify.js';
import { applyLayer } from './layers/index.js';
import type { Backoff } from './retry.js';
import { TargetRoot } from './target.js';

export interface InstallOptions {
  server: string;
  token: string;
  /** BOOTIF from the kernel command line, or a MAC. */
  bootif?: string;
  /** Only these disks may be planned onto (`ferry install --disk`). */
  disks?: string[];
  /** Install into this existing directory instead of partitioning disks (no fstab, no bootloader disk). */
  root?: string;
  /** The operator confirmed wiping the disks. */
  yes: boolean;
  /** Overrides the deployment's finish action. */
  finish?: FinishAction;
  /** Reboot/poweroff are allowed only in the boot environment; a host install always stays. */
  allowPowerActions?: boolean;
  /** Rebuild the initramfs when the image has the tools (default true). */
  initramfs?: boolean;
  /** Where the target is mounted (default: a fresh directory under /tmp). */
  mountRoot?: string;
  backoff?: Backoff;
  heartbeatMs?: number;
  /** Lines for people (the console). */
  console?: (line: string) => void;
  /** Sees every event as it is emitted (a JSON log, tests). */
  onEvent?: ProgressSink;
}

export interface InstallContext {
  opts: InstallOptions;
  client: ServerClient;
  emit: ProgressSink;
  /** What is being done right now, for the error report. */
  doing: string;
  mac?: string;
  config?: InstallConfig;
  layout?: Layout;
  plan?: DiskPlan;
  root?: string;
  target?: TargetRoot;
  /** Whether the disk plan's mounts are up (for teardown). */
  mounted: boolean;
  disk?: DiskModule;
  finish: FinishAction;
  warnings: string[];
}

export interface Stage {
  name: (typeof PHASES)[number];
  run(ctx: InstallContext): Promise<void>;
}

interface DiskModule {
  parseLayout: (xml: string, opts?: { file?: string }) => Layout;
  discoverDisks: DiscoverDisksFn;
  planDisks: PlanDisksFn;
  applyDiskPlan: ApplyDiskPlanFn;
  teardownDiskPlan: TeardownDiskPlanFn;
}

/** The layouts side (installer/disk), loaded when disks are installed; injectable for tests. */
async function diskModule(): Promise<DiskModule> {
  const [index, discover, apply] = await Promise.all([import('./disk/index.js'), import('./disk/discover.js'), import('./disk/apply.js')]);
  return { parseLayout: index.parseLayout, planDisks: index.planDisks, discoverDisks: discover.discoverDisks, applyDiskPlan: apply.applyDiskPlan, teardownDiskPlan: apply.teardownDiskPlan };
}

/**
 * Disks of the plan that the running system uses: a file system mounted from them, or swap on
 * them (/proc/mounts, /proc/swaps). Pure; the layouts side checks mounts too, through lsblk.
 */
export function disksInUse(disks: string[], mounts: string, swaps: string): Array<{ disk: string; device: string; use: string }> {
  const used: Array<{ disk: string; device: string; use: string }> = [];
  const devs = [
    ...mounts.split('\n').map((l) => l.split(/\s+/)).filter((f) => f[0]?.startsWith('/dev/')).map((f) => ({ device: f[0], use: `mounted on ${f[1]}` })),
    ...swaps.split('\n').slice(1).map((l) => l.split(/\s+/)[0]).filter((d) => d?.startsWith('/dev/')).map((d) => ({ device: d, use: 'active swap' })),
  ];
  for (const disk of disks) {
    const re = new RegExp(`^${disk.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(p?[0-9]+)?$`);
    for (const d of devs) if (re.test(d.device)) used.push({ disk, ...d });
  }
  return used;
}

function readOr(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

const identify: Stage = {
  name: 'identify',
  async run(ctx) {
    ctx.doing = 'finding the boot network interface';
    const fromBootif = ctx.opts.bootif ? macFromBootif(ctx.opts.bootif) : undefined;
    ctx.mac = fromBootif ?? pickMac(readInterfaces());
    ctx.emit({ phase: 'identify', state: 'info', object: ctx.mac, message: `${fromBootif ? 'BOOTIF' : 'interfaces'}: ${ctx.mac ?? 'no MAC found'}; host ${os.hostname()}`, details: { mac: ctx.mac, kernel: os.release() } });
  },
};

const config: Stage = {
  name: 'config',
  async run(ctx) {
    ctx.doing = `fetching the install configuration from ${ctx.client.server}`;
    const c = await ctx.client.getConfig();
    if (!c || !c.image || !Array.isArray(c.image.layers) || !c.layout) {
      throw new FerryError('FERRY_E_CONFIG_INVALID', 'the install configuration from the server lacks image layers or a layout', {
        details: { keys: Object.keys(c ?? {}) }, hint: 'server and installer versions differ; update the boot environment',
      });
    }
    ctx.config = c;
    ctx.finish = ctx.opts.finish ?? c.finish ?? 'reboot';
    ctx.emit({ phase: 'config', state: 'info', message: `node ${c.node.name}, image ${c.image.name}@${c.image.version} (${c.image.layers.length} layers), deployment ${c.deployment.id}` });
  },
};

const disks: Stage = {
  name: 'disks',
  async run(ctx) {
    if (ctx.opts.root) {
      ctx.root = ctx.opts.root;
      ctx.target = new TargetRoot(ctx.opts.root);
      ctx.emit({ phase: 'disks', state: 'info', message: `installing into the directory ${ctx.opts.root}; no disks are touched` });
      return;
    }
    const c = ctx.config!;
    const dm = (ctx.disk = await diskModule());
    ctx.doing = 'reading the layout';
    ctx.layout = dm.parseLayout(c.layout.xml, { file: `layout ${c.layout.digest}` });
    ctx.doing = 'finding the disks';
    const found = await dm.discoverDisks(ctx.opts.disks?.length ? { only: ctx.opts.disks } : {});
    ctx.doing = 'planning the disks';
    const plan = dm.planDisks(ctx.layout, found, { map: c.diskMap });
    ctx.plan = plan;
    for (const w of plan.warnings) ctx.emit({ phase: 'disks', state: 'warning', message: w.message, code: w.code });
    ctx.emit({ phase: 'disks', state: 'info', message: `plan: ${plan.disks.map((d) => d.path).join(', ')}; ${plan.commands.length} commands`, details: { commands: plan.commands, fstab: plan.fstab } });
    const busy = disksInUse(plan.disks.map((d) => d.path), readOr('/proc/self/mounts'), readOr('/proc/swaps'));
    if (busy.length) {
      throw new FerryError('FERRY_E_DISK_IN_USE', `refusing to install onto a disk the running system uses: ${busy.map((b) => `${b.device} (${b.use})`).join(', ')}`, {
        details: { busy }, hint: 'choose another disk (--disk), or unmount it and swapoff first; Ferry never overwrites the disk it runs from',
      });
    }
    const root = ctx.opts.mountRoot ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-target-'));
    ctx.root = root;
    ctx.doing = 'partitioning, making file systems and mounting them';
    ctx.mounted = true;
    await dm.applyDiskPlan(plan, { root, yes: ctx.opts.yes, progress: ctx.emit });
    ctx.target = new TargetRoot(root);
  },
};

const layers: Stage = {
  name: 'layers',
  async run(ctx) {
    const c = ctx.config!;
    if (c.transport.kind !== 'http') {
      throw new FerryError('FERRY_E_TRANSPORT_UNSUPPORTED', `transport "${c.transport.kind}" is not supported by this installer`, {
        details: { transport: c.transport.kind }, hint: 'deploy with the http transport',
      });
    }
    const baseUrl = (c.transport as { baseUrl?: string }).baseUrl || ctx.client.server;
    let total = 0;
    for (const [i, ref] of c.image.layers.entries()) {
      ctx.doing = `layer ${i + 1} of ${c.image.layers.length} (${ref.digest})`;
      const s = await applyLayer(ref, { baseUrl, token: ctx.opts.token, target: ctx.target!, index: i, progress: ctx.emit, backoff: ctx.opts.backoff });
      total += s.entries;
    }
    ctx.emit({ phase: 'layers', state: 'info', message: `${c.image.layers.length} layers, ${total} entries` });
  },
};

const customize: Stage = {
  name: 'customize',
  async run(ctx) {
    const c = ctx.config!;
    ctx.doing = 'planning the customization';
    const ops = planCustomization(c.image.customizations ?? [], {
      node: c.node,
      inputs: c.inputs ?? {},
      fstab: ctx.plan?.fstab,
      mdadmConf: ctx.plan?.mdadmConf,
      machineId: randomBytes(16).toString('hex'),
      initramfs: ctx.opts.initramfs,
    }, targetView(ctx.target!));
    ctx.doing = 'customizing the installed system';
    await applyCustomization(ops, ctx.target!, ctx.emit);
  },
};

const bootloader: Stage = {
  name: 'bootloader',
  async run(ctx) {
    const c = ctx.config!;
    ctx.doing = 'deciding the bootloader';
    const bp = planBootloader({
      override: c.bootloader ?? 'auto',
      request: ctx.plan?.bootloader,
      firmwareEfi: fs.existsSync('/sys/firmware/efi'),
      view: targetView(ctx.target!),
      directoryInstall: !!ctx.opts.root,
    });
    for (const w of bp.warnings) {
      ctx.warnings.push(w);
      ctx.emit({ phase: 'bootloader', state: 'warning', message: w });
    }
    if (!bp.commands.length) return;
    ctx.doing = `installing the ${bp.mode} bootloader`;
    await applyBootloader(bp, ctx.target!, ctx.emit);
  },
};

const finish: Stage = {
  name: 'finish',
  async run(ctx) {
    ctx.doing = 'unmounting the target';
    await teardown(ctx);
  },
};

export const STAGES: Stage[] = [identify, config, disks, layers, customize, bootloader, finish];

async function teardown(ctx: InstallContext): Promise<void> {
  if (!ctx.mounted) return;
  await run(['sync'], { quiet: true });
  if (ctx.plan && ctx.disk && ctx.root) await ctx.disk.teardownDiskPlan(ctx.plan, ctx.root);
  ctx.mounted = false;
  if (ctx.root && !ctx.opts.mountRoot && !ctx.opts.root) fs.rmdirSync(ctx.root);
}

export interface InstallOutcome {
  result: InstallResult;
  finish: FinishAction;
  /** Whether every event reached the server. */
  eventsDelivered: boolean;
}

/** What the error event carries: the stage, what was done, and a command's argv and output. */
export function errorEvent(phase: string, doing: string, e: FerryError): ProgressEvent {
  const d = e.details ?? {};
  return {
    phase,
    state: 'error',
    code: e.code,
    message: `${doing}: ${e.message}`,
    details: {
      doing,
      ...(d.argv ? { argv: d.argv, exitCode: d.exitCode, stdoutTail: d.stdoutTail, stderrTail: d.stderrTail } : {}),
      ...d,
      hint: e.hint,
    },
  };
}

export async function runInstall(opts: InstallOptions): Promise<InstallOutcome> {
  const client = new ServerClient({ server: opts.server, token: opts.token, backoff: opts.backoff });
  const sender = new EventSender(client, { heartbeatMs: opts.heartbeatMs });
  const say = opts.console ?? ((l: string) => process.stderr.write(l + '\n'));
  const toConsole = throttled((e) => say(formatEvent(e)), 2000);
  const emit: ProgressSink = (e) => {
    const ev = e.ts ? e : { ...e, ts: new Date().toISOString() };
    sender.push(ev);
    opts.onEvent?.(ev);
    if (e.state !== 'heartbeat') toConsole(ev);
  };
  const ctx: InstallContext = { opts, client, emit: throttled(emit, 1000), doing: 'starting', mounted: false, finish: opts.finish ?? 'reboot', warnings: [] };
  sender.start();
  let result: InstallResult = { status: 'success' };
  for (const stage of STAGES) {
    sender.phase = stage.name;
    const t0 = Date.now();
    emit({ phase: stage.name, state: 'start' });
    try {
      await stage.run(ctx);
      emit({ phase: stage.name, state: 'end', message: `${((Date.now() - t0) / 1000).toFixed(1)} s` });
    } catch (err) {
      const e = toFerryError(err);
      log.error('install failed', { phase: stage.name, doing: ctx.doing, code: e.code, message: e.message });
      emit(errorEvent(stage.name, ctx.doing, e));
      result = { status: 'failed', error: { code: e.code, message: e.message, details: { ...e.details, doing: ctx.doing, hint: e.hint }, phase: stage.name } };
      try {
        await teardown(ctx);
      } catch (te) {
        emit({ phase: stage.name, state: 'warning', message: `could not unmount the target after the failure: ${(te as Error).message}` });
      }
      break;
    }
  }
  const delivered = await sender.close();
  try {
    await client.postResult(result);
  } catch (e) {
    say(`could not report the result to the server: ${(e as Error).message}`);
  }
  const fin = result.status === 'success' ? (opts.allowPowerActions ? ctx.finish : 'stay') : 'stay';
  return { result, finish: fin, eventsDelivered: delivered };
}
