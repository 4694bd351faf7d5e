/**
 * `ferry-installer run`: the boot environment's install. The settings come from the kernel command
 * line: ferry.server=URL ferry.token=TOKEN BOOTIF=01-… ferry.finish=reboot|poweroff|stay.
 * With ferry.mode=inventory (a discovery boot) it only reports the hardware (discover.ts).
 */
import * as fs from 'node:fs';
import { usageError } from '../../common/cli.js';
import { FerryError } from '../../common/errors.js';
import { log } from '../../common/log.js';
import type { FinishAction } from '../../common/protocol.js';
import { run } from '../../common/run.js';
import { parseCmdline } from '../identify.js';
import { mediumWritable } from '../medium-record.js';
import { runInstall, type InstallOptions } from '../install.js';
import { parse, report, seedWait } from './outcome.js';
import { discoveryBoot, discoveryFinish } from './discover.js';

export const RUN_USAGE = 'ferry-installer run [--server URL --token TOKEN | --medium DIR [--medium-device DEV] [--exclude-disk DEV]... [--unattended]] [--bootif MAC] [--finish reboot|poweroff|stay] [--disk DEV]... [--root DIR] [--cmdline FILE]';

function finishAction(v: string | undefined): FinishAction | undefined {
  if (v === undefined || v === '') return undefined;
  if (v === 'reboot' || v === 'poweroff' || v === 'stay') return v;
  throw new FerryError('FERRY_E_USAGE', `finish action "${v}" is not reboot, poweroff or stay`, { hint: 'use ferry.finish=reboot|poweroff|stay' });
}

/** `ferry-installer run`: the boot environment's install. */
export async function runCommand(argv: string[]): Promise<number> {
  const v = parse(argv, RUN_USAGE);
  if (v.help) {
    process.stdout.write(`usage: ${RUN_USAGE}\n`);
    return 0;
  }
  if (v.verbose) log.level = 'info';
  const cmdlineFile = (v.cmdline as string | undefined) ?? '/proc/cmdline';
  const k = fs.existsSync(cmdlineFile) ? parseCmdline(fs.readFileSync(cmdlineFile, 'utf8')) : {};
  const medium = v.medium as string | undefined;
  const server = (v.server as string | undefined) ?? k['ferry.server'] ?? (medium ? 'medium:' + medium : undefined);
  const token = (v.token as string | undefined) ?? k['ferry.token'] ?? (medium ? '' : undefined);
  if (!server || token === undefined || (!medium && !token)) throw usageError('no server or token: give --server and --token, or boot with ferry.server=URL ferry.token=TOKEN', RUN_USAGE);
  if (k['ferry.mode'] === 'inventory' && !medium) {
    await discoveryBoot({ server, token, finish: discoveryFinish((v.finish as string | undefined) ?? k['ferry.finish']) });
    return 0;
  }
  const opts: InstallOptions = {
    server,
    token,
    // A restore medium (ferry.medium=LABEL, mounted by the init): no server; the medium's disk is
    // never a target; unless unattended, what will be erased is shown with a 10 s countdown.
    ...(medium ? { medium, mediumDevice: v['medium-device'] as string | undefined, excludeDisks: v['exclude-disk'] as string[] | undefined, countdownS: v.unattended || k['ferry.unattended'] === '1' ? 0 : 10 } : {}),
    bootif: (v.bootif as string | undefined) ?? k['BOOTIF'],
    finish: finishAction((v.finish as string | undefined) ?? k['ferry.finish']),
    disks: v.disk as string[] | undefined,
    root: v.root as string | undefined,
    // Being armed for install is the confirmation in the boot environment.
    yes: true,
    onNode: !v.root,
    // ferry.initramfs=0 skips the rebuild (slow under emulation; the image's own initramfs stays);
    // ferry.initramfs=1 rebuilds it whatever it holds; without either the installer decides.
    seedWaitS: seedWait((v['seed-wait'] as string | undefined) ?? k['ferry.seed_wait']),
    initramfs: v['no-initramfs'] || k['ferry.initramfs'] === '0' ? false : k['ferry.initramfs'] === '1' ? true : undefined,
  };
  const outcome = await runInstall(opts);
  const code = report(outcome);
  if (code === 0 && medium) await leaveMedium(medium, v['medium-device'] as string | undefined);
  if (code === 0 && outcome.finish !== 'stay') {
    process.stderr.write(`ferry: ${outcome.finish} now\n`);
    await run(['sync']);
    await run([outcome.finish === 'reboot' ? 'reboot' : 'poweroff', '-f']);
  }
  return code;
}

/**
 * After a successful install from a medium, the machine must boot the installed disk: a CD is
 * unmounted and ejected (util-linux's eject: the CDROMEJECT ioctl; the tray stays open, so the
 * firmware passes over the drive); a stick cannot be ejected by itself, so the console says to
 * remove it (UEFI also has the new boot entry first, made by the bootloader stage).
 */
export async function leaveMedium(dir: string, dev: string | undefined): Promise<void> {
  const say = (l: string) => process.stderr.write(l + '\n');
  const w = dev === undefined ? undefined : mediumWritable(dev);
  const cd = w !== undefined && !w.ok && w.cd === true;
  if (!dev || !cd) {
    say(`ferry: installed from the medium${dev ? ` ${dev}` : ''}; remove it now (a stick is not ejected), or keep the disk before it in the firmware's boot order, so the machine boots the installed system`);
    return;
  }
  try {
    await run(['umount', dir], { quiet: true, timeoutMs: 30_000 });
    await run(['eject', dev], { quiet: true, timeoutMs: 30_000 });
    say(`ferry: ejected the medium ${dev}: the machine boots the installed disk next`);
  } catch (e) {
    say(`ferry: could not eject the medium ${dev} (${(e as Error).message.split('\n')[0]}); remove it, or keep the disk before it in the firmware's boot order`);
  }
}
