/**
 * Argument handling of the `ferry-installer` binary, and of `ferry install` (the same code on an
 * ordinary host). In the boot environment the settings come from the kernel command line:
 * ferry.server=URL ferry.token=TOKEN BOOTIF=01-… ferry.finish=reboot|poweroff|stay.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { FerryError, toFerryError } from '../common/errors.js';
import { log } from '../common/log.js';
import { ADMIN_ROUTES, type ArmResponse, type FinishAction } from '../common/protocol.js';
import { run } from '../common/run.js';
import { VERSION } from '../common/version.js';
import { parseCmdline } from './identify.js';
import { runInstall, type InstallOptions } from './install.js';

const RUN_USAGE = 'ferry-installer run [--server URL --token TOKEN] [--bootif MAC] [--finish reboot|poweroff|stay] [--disk DEV]... [--root DIR] [--cmdline FILE]';
const INSTALL_USAGE = 'ferry install --server URL (--token TOKEN | --node NAME [--data DIR | --admin-token T]) (--disk DEV... --yes | --root DIR) [--no-initramfs]';

function usage(message: string, u: string): FerryError {
  return new FerryError('FERRY_E_USAGE', `${message}\nusage: ${u}`, { hint: 'see the usage line above' });
}

function parse(argv: string[], u: string) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        server: { type: 'string' }, token: { type: 'string' }, bootif: { type: 'string' }, finish: { type: 'string' },
        disk: { type: 'string', multiple: true }, root: { type: 'string' }, yes: { type: 'boolean' }, cmdline: { type: 'string' },
        node: { type: 'string' }, data: { type: 'string' }, 'admin-token': { type: 'string' }, 'no-initramfs': { type: 'boolean' },
        verbose: { type: 'boolean', short: 'v' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (e) {
    throw usage((e as Error).message, u);
  }
}

function finishAction(v: string | undefined): FinishAction | undefined {
  if (v === undefined || v === '') return undefined;
  if (v === 'reboot' || v === 'poweroff' || v === 'stay') return v;
  throw new FerryError('FERRY_E_USAGE', `finish action "${v}" is not reboot, poweroff or stay`, { hint: 'use ferry.finish=reboot|poweroff|stay' });
}

function report(outcome: Awaited<ReturnType<typeof runInstall>>): number {
  const r = outcome.result;
  if (r.status === 'success') {
    process.stderr.write(`ferry: install finished successfully${outcome.eventsDelivered ? '' : ' (some progress events did not reach the server)'}\n`);
    return 0;
  }
  const e = r.error!;
  const bar = '='.repeat(72);
  process.stderr.write(`\n${bar}\nFERRY INSTALL FAILED in stage "${e.phase}"\n${e.code}: ${e.message}\n`);
  const d = e.details as Record<string, unknown> | undefined;
  if (d?.doing) process.stderr.write(`while: ${d.doing}\n`);
  if (d?.argv) process.stderr.write(`command: ${(d.argv as string[]).join(' ')}\n`);
  if (d?.stderrTail) process.stderr.write(`output:\n${d.stderrTail}\n`);
  if (d?.hint) process.stderr.write(`fix: ${d.hint}\n`);
  process.stderr.write(`${bar}\n`);
  return 1;
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
  const server = (v.server as string | undefined) ?? k['ferry.server'];
  const token = (v.token as string | undefined) ?? k['ferry.token'];
  if (!server || !token) throw usage('no server or token: give --server and --token, or boot with ferry.server=URL ferry.token=TOKEN', RUN_USAGE);
  const opts: InstallOptions = {
    server,
    token,
    bootif: (v.bootif as string | undefined) ?? k['BOOTIF'],
    finish: finishAction((v.finish as string | undefined) ?? k['ferry.finish']),
    disks: v.disk as string[] | undefined,
    root: v.root as string | undefined,
    // Being armed for install is the confirmation in the boot environment.
    yes: true,
    onNode: !v.root,
    // ferry.initramfs=0 skips the rebuild (slow under emulation; the image's own initramfs stays).
    initramfs: v['no-initramfs'] || k['ferry.initramfs'] === '0' ? false : undefined,
  };
  const outcome = await runInstall(opts);
  const code = report(outcome);
  if (code === 0 && outcome.finish !== 'stay') {
    process.stderr.write(`ferry: ${outcome.finish} now\n`);
    await run(['sync']);
    await run([outcome.finish === 'reboot' ? 'reboot' : 'poweroff', '-f']);
  }
  return code;
}

async function adminTokenFrom(v: Record<string, unknown>): Promise<string> {
  if (v['admin-token']) return v['admin-token'] as string;
  const dir = (v.data as string | undefined) || process.env.FERRY_DATA || '/var/lib/ferry';
  const file = path.join(dir, 'admin.token');
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new FerryError('FERRY_E_USAGE', `--node needs the admin token: could not read ${file} (${(e as NodeJS.ErrnoException).code})`, {
      hint: 'give --data DIR of the server, or --admin-token TOKEN, or arm the node with ferry deploy and pass --token',
    });
  }
}

/** Arm a deployment for a node (what `ferry deploy` does), returning its deploy token. */
export async function armNode(server: string, adminToken: string, node: string): Promise<ArmResponse['deployment']> {
  const res = await request(server.replace(/\/+$/, '') + ADMIN_ROUTES.deployments, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ node }),
  }).catch((e) => {
    throw new FerryError('FERRY_E_SERVER_UNREACHABLE', `could not reach the server ${server}: ${(e as Error).message}`, { hint: 'check --server and that the server runs' });
  });
  const text = await res.body.text();
  if (res.statusCode >= 300) {
    let msg = text.slice(0, 300);
    try {
      msg = JSON.parse(text).error.message ?? msg;
    } catch {
      /* keep the text */
    }
    throw new FerryError('FERRY_E_ARM_FAILED', `the server did not arm node "${node}": HTTP ${res.statusCode}: ${msg}`, {
      details: { node, status: res.statusCode }, hint: 'check that the node exists and has an image and a layout (ferry node show NODE)',
    });
  }
  return (JSON.parse(text) as ArmResponse).deployment;
}

/** `ferry install`: the same install onto disks or a directory of this host. */
export async function installCommand(argv: string[]): Promise<number> {
  const v = parse(argv, INSTALL_USAGE);
  if (v.help) {
    process.stdout.write(`usage: ${INSTALL_USAGE}\n`);
    return 0;
  }
  if (v.verbose) log.level = 'info';
  const server = v.server as string | undefined;
  if (!server) throw usage('--server is required', INSTALL_USAGE);
  if (!v.token && !v.node) throw usage('give --token TOKEN, or --node NAME to arm a deployment', INSTALL_USAGE);
  if (!v.root && !(v.disk as string[] | undefined)?.length) throw usage('name the target with --disk DEV (repeatable) or --root DIR', INSTALL_USAGE);
  if (v.disk && !v.yes) {
    throw new FerryError('FERRY_E_NOT_CONFIRMED', `installing erases ${(v.disk as string[]).join(', ')}; add --yes to confirm`, {
      details: { disks: v.disk }, hint: 'add --yes after checking the device names (lsblk)',
    });
  }
  let token = v.token as string | undefined;
  if (!token) {
    const d = await armNode(server, await adminTokenFrom(v), v.node as string);
    process.stderr.write(`ferry: armed deployment ${d.id} for node ${d.node}\n`);
    token = d.token;
  }
  const outcome = await runInstall({
    server,
    token,
    disks: v.disk as string[] | undefined,
    root: v.root as string | undefined,
    yes: !!v.yes,
    finish: 'stay',
    onNode: false,
    initramfs: v['no-initramfs'] ? false : undefined,
  });
  if (v.json) process.stdout.write(JSON.stringify(outcome.result, null, 2) + '\n');
  return report(outcome);
}

async function layoutCommand(argv: string[]): Promise<number> {
  const m = await import('./layout/cli.js');
  return m.layoutCommand(argv);
}

/** Argument handling of the `ferry-installer` binary. */
export async function installerMain(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === '--version' || cmd === 'version') {
    process.stdout.write(`ferry-installer ${VERSION}\n`);
    return 0;
  }
  try {
    if (cmd === 'run') return await runCommand(rest);
    if (cmd === 'install') return await installCommand(rest);
    if (cmd === 'layout') return await layoutCommand(rest);
  } catch (e) {
    const err = toFerryError(e);
    process.stderr.write(err.format() + '\n');
    return err.code === 'FERRY_E_USAGE' ? 2 : 1;
  }
  process.stderr.write(`usage: ferry-installer --version | ${RUN_USAGE.replace('ferry-installer ', '')} | install … (as ferry install) | layout …\n`);
  return 2;
}
