/** `ferry install` and `ferry-installer install`: the install onto disks or a directory of an ordinary host. */
import { httpRequest } from '../http.js';
import { dataDir, readAdminToken, usageError } from '../../common/cli.js';
import { FerryError } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { ADMIN_ROUTES, type ArmResponse } from '../../common/protocol.js';
import { runInstall, type InstallContext, type InstallOptions } from '../install.js';
import { ServerClient } from '../client.js';
import { formatPlan } from '../disk/print.js';
import { config } from '../stages/config.js';
import { planTargetDisks } from '../stages/disks.js';
import { identify } from '../stages/identify.js';
import { parse as parseOptions } from '../../common/cli.js';
import { OPTIONS, report, seedWait } from './outcome.js';

const INSTALL_USAGE = 'ferry install --server URL (--token TOKEN | --node NAME [--data DIR | --admin-token T]) (--disk DEV... --yes | --root DIR) [--no-initramfs] [--seed-wait S]\n       ferry install --medium DIR [--medium-device DEV|FILE] (--disk DEV... --yes | --root DIR) [--no-initramfs]\n       ferry install --dry-run --server URL --token TOKEN (--disk DEV... | --root DIR) [--json]';

function adminTokenFrom(v: Record<string, unknown>): string {
  return readAdminToken(dataDir(v), {
    given: v['admin-token'] as string | undefined,
    hint: 'give --data DIR of the server, or --admin-token TOKEN, or arm the node (ferry deploy NODE) and pass its token with --token',
  });
}

/** Arm a deployment for a node (what `ferry deploy` does), returning its deploy token. */
export async function armNode(server: string, adminToken: string, node: string): Promise<ArmResponse['deployment']> {
  const res = await httpRequest(server.replace(/\/+$/, '') + ADMIN_ROUTES.deployments, {
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
  // --dry-run is the host install's own (ferry-installer run on a node has none).
  const v = parseOptions(argv, { ...OPTIONS, 'dry-run': { type: 'boolean' } }, INSTALL_USAGE, { positionals: false }).values;
  if (v.help) {
    process.stdout.write(`usage: ${INSTALL_USAGE}\n`);
    return 0;
  }
  if (v.verbose) log.level = 'info';
  if (v.medium) return mediumInstall(v);
  const server = v.server as string | undefined;
  if (!server) throw usageError('--server is required', INSTALL_USAGE);
  if (!v.token && !v.node) throw usageError('give --token TOKEN, or --node NAME to arm a deployment', INSTALL_USAGE);
  if (!v.root && !(v.disk as string[] | undefined)?.length) throw usageError('name the target with --disk DEV (repeatable) or --root DIR', INSTALL_USAGE);
  if (v['dry-run']) {
    if (!v.token) throw usageError('--dry-run reads an armed deployment: give its --token (ferry deploy NODE arms one); --node would arm a new one', INSTALL_USAGE);
    return dryRun({ server, token: v.token as string, disks: v.disk as string[] | undefined, root: v.root as string | undefined, yes: false, finish: 'stay', onNode: false }, !!v.json);
  }
  if (v.disk && !v.yes) {
    throw new FerryError('FERRY_E_NOT_CONFIRMED', `installing erases ${(v.disk as string[]).join(', ')}; add --yes to confirm`, {
      details: { disks: v.disk }, hint: 'add --yes after checking the device names (lsblk)',
    });
  }
  let token = v.token as string | undefined;
  if (!token) {
    const d = await armNode(server, adminTokenFrom(v), v.node as string);
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
    seedWaitS: seedWait(v['seed-wait'] as string | undefined),
  });
  if (v.json) process.stdout.write(JSON.stringify(outcome.result, null, 2) + '\n');
  return report(outcome);
}

/**
 * `ferry install --medium DIR`: install from a restore medium's files (the mounted ISO, or the
 * ISO's files extracted) onto disks of this host or a directory; no server is involved. Every
 * layer is verified before the first write; --yes confirms erasing the disks (no countdown).
 */
async function mediumInstall(v: Record<string, any>): Promise<number> {
  if (!v.root && !(v.disk as string[] | undefined)?.length) throw usageError('name the target with --disk DEV (repeatable) or --root DIR', INSTALL_USAGE);
  if (v.server || v.token || v.node) throw usageError('--medium installs without a server: leave out --server, --token and --node', INSTALL_USAGE);
  if (v.disk && !v.yes) {
    throw new FerryError('FERRY_E_NOT_CONFIRMED', `installing erases ${(v.disk as string[]).join(', ')}; add --yes to confirm`, { details: { disks: v.disk }, hint: 'add --yes after checking the device names (lsblk)' });
  }
  const outcome = await runInstall({
    server: 'medium:' + v.medium,
    token: '',
    medium: v.medium as string,
    mediumDevice: v['medium-device'] as string | undefined,
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

/**
 * `ferry install --dry-run`: what the install would do, and nothing of it. It reads the
 * deployment's configuration with `?peek=1` (the server leaves the deployment armed, records
 * nothing and tells no monitor; no event or result is sent, so the same token then installs), plans the
 * layout onto the disks as they are, runs the checks made before the first write (disks
 * present, unchanged, not in use) and prints the whole plan: every disk command in order, the
 * teardown, the layers, the customizations and the bootloader request.
 */
async function dryRun(opts: InstallOptions, json: boolean): Promise<number> {
  const client = new ServerClient({ server: opts.server, token: opts.token, peek: true });
  const notes: string[] = [];
  const ctx: InstallContext = {
    opts, client, doing: 'starting', mounted: false, finish: 'stay', warnings: [],
    emit: (e) => {
      if (e.state === 'warning') notes.push(`warning: ${e.message}`);
    },
  };
  await identify.run(ctx);
  await config.run(ctx);
  const c = ctx.config!;
  let plan: import('../../layout/types.js').DiskPlan | undefined;
  if (!opts.root) {
    const planned = await planTargetDisks(ctx);
    plan = planned.plan;
    const { preflight } = await import('../disk/apply.js');
    preflight(plan, planned.found);
  }
  if (json) {
    process.stdout.write(JSON.stringify({ dryRun: true, node: c.node.name, deployment: c.deployment.id, image: c.image, root: opts.root, bootloader: c.bootloader, plan }, null, 2) + '\n');
    return 0;
  }
  const w = (l: string) => process.stdout.write(l + '\n');
  w(`dry run of deployment ${c.deployment.id}: node ${c.node.name}, image ${c.image.name}@${c.image.version} (${c.image.digest.slice(0, 19)}...)`);
  if (plan) process.stdout.write(formatPlan(plan));
  else w(`target: the directory ${opts.root}; no disks are touched`);
  w(`layers (${c.image.layers.length}, from ${c.transport.kind === 'http' ? c.transport.baseUrl : c.transport.kind}):`);
  for (const l of c.image.layers) w(`  ${l.digest}  ${l.size} bytes  ${l.mediaType}`);
  w(`customizations: ${c.image.customizations.map((x) => x.kind).join(', ') || 'none'}`);
  w(`bootloader: ${c.bootloader}${plan ? `, layout asks ${plan.bootloader.mode ?? 'detect'}` : ''}`);
  for (const n of notes) w(n);
  w('dry run: nothing was changed');
  return 0;
}
