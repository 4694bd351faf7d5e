/** customize: plan from the image's items and the inputs, then apply into the target. */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { applyCustomization, planCustomization, targetView } from '../customize/apply.js';
import { decideInitramfs, imageAsksRebuild, machineNeeds, targetKernels, type InitramfsDecision } from '../customize/initramfs.js';
import { imageHasSshd, type TargetView } from '../customize/plan.js';
import { makeHostKeys } from '../customize/hostkeys.js';
import type { InstallContext, Stage } from './types.js';

export const customize: Stage = {
  name: 'customize',
  async run(ctx) {
    const c = ctx.config!;
    const view = targetView(ctx.target!);
    const items = c.image.customizations ?? [];
    let initramfsDecision: InitramfsDecision | undefined;
    if (ctx.opts.initramfs !== false && (view.exists('/usr/sbin/update-initramfs') || view.exists('/usr/bin/dracut') || view.exists('/usr/sbin/dracut'))) {
      ctx.doing = 'reading the image\'s initramfs';
      initramfsDecision = decideForMachine(ctx, view, items as { kind: string; path?: string }[]);
      ctx.emit({ phase: 'customize', state: 'info', object: 'initramfs', message: `initramfs ${initramfsDecision.reason}`, details: { initramfs: initramfsDecision } });
    }
    // Fresh SSH host keys, made here so that the server knows them before the machine boots.
    let sshHostKeys: ReturnType<typeof makeHostKeys> | undefined;
    if (imageHasSshd(view)) {
      ctx.doing = 'making SSH host keys';
      sshHostKeys = makeHostKeys(`root@${c.inputs?.hostname ?? c.node.name}`);
    }
    ctx.doing = 'planning the customization';
    const ops = await planCustomization(items, {
      node: c.node,
      inputs: c.inputs ?? {},
      fstab: ctx.plan?.fstab,
      mdadmConf: ctx.plan?.mdadmConf,
      machineId: randomBytes(16).toString('hex'),
      initramfs: ctx.opts.initramfs,
      initramfsDecision,
      sshHostKeys,
    }, view);
    ctx.doing = 'customizing the installed system';
    await applyCustomization(ops, ctx.target!, ctx.emit);
    if (sshHostKeys) {
      const types = sshHostKeys.map((k) => k.type);
      const publicKeys = sshHostKeys.map((k) => k.publicLine);
      // A medium install has no server: the public keys are in this event (the console) only.
      if (ctx.opts.medium) {
        ctx.emit({ phase: 'customize', state: 'info', object: 'ssh-host-keys', message: `${sshHostKeys.length} SSH host keys made (no server to report them to)`, details: { types, publicKeys } });
        return;
      }
      ctx.doing = 'reporting the SSH host keys to the server';
      const address = addressOf(c.inputs ?? {});
      try {
        await ctx.client.postSshHostKeys({ keys: publicKeys, ...(address ? { address } : {}) });
        ctx.emit({ phase: 'customize', state: 'info', object: 'ssh-host-keys', message: `${sshHostKeys.length} SSH host keys made and reported`, details: { types, publicKeys } });
      } catch (e) {
        // The install is not lost over it: the keys are in place; the operator records them by hand.
        ctx.emit({ phase: 'customize', state: 'warning', code: 'FERRY_W_SSH_HOST_KEYS', object: 'ssh-host-keys', message: `the SSH host keys were made but not reported: ${(e as Error).message}`, details: { types, publicKeys } });
      }
    }
  },
};

/** The node's static address (input network.address=CIDR), else none: the server then takes the installer's. */
export function addressOf(inputs: Record<string, string>): string | undefined {
  const a = inputs['network.address']?.split('/')[0]?.trim();
  return a && /^[A-Za-z0-9.:-]+$/.test(a) ? (a.includes(':') ? `[${a}]` : a) : undefined;
}

/** Keep or rebuild: the operator's word, the image's items, then the initramfs against this machine. */
function decideForMachine(ctx: InstallContext, view: TargetView, items: { kind: string; path?: string }[]): InitramfsDecision {
  if (ctx.opts.initramfs === true) return decideInitramfs([], { modules: [], tools: [] }, 'the operator asked for it (ferry.initramfs=1)');
  const asked = imageAsksRebuild(items);
  if (asked) return decideInitramfs([], { modules: [], tools: [] }, asked);
  if (!ctx.plan) return decideInitramfs([], { modules: [], tools: [] }, 'installed into a directory: the machine that will boot it is unknown');
  const t = ctx.target!;
  const readFile = (p: string): Buffer | undefined => {
    try {
      return fs.readFileSync(t.resolve(p, { follow: true }));
    } catch {
      return undefined;
    }
  };
  return decideInitramfs(targetKernels(view, readFile), machineNeeds(ctx.plan));
}
