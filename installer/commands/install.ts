/** `ferry install` and `ferry-installer install`: the install onto disks or a directory of an ordinary host. */
import { request } from 'undici';
import { dataDir, readAdminToken, usageError } from '../../common/cli.js';
import { FerryError } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { ADMIN_ROUTES, type ArmResponse } from '../../common/protocol.js';
import { runInstall } from '../install.js';
import { parse, report } from './outcome.js';

const INSTALL_USAGE = 'ferry install --server URL (--token TOKEN | --node NAME [--data DIR | --admin-token T]) (--disk DEV... --yes | --root DIR) [--no-initramfs]';

function adminTokenFrom(v: Record<string, unknown>): string {
  return readAdminToken(dataDir(v), {
    given: v['admin-token'] as string | undefined,
    hint: 'give --data DIR of the server, or --admin-token TOKEN, or arm the node (ferry deploy NODE) and pass its token with --token',
  });
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
  if (!server) throw usageError('--server is required', INSTALL_USAGE);
  if (!v.token && !v.node) throw usageError('give --token TOKEN, or --node NAME to arm a deployment', INSTALL_USAGE);
  if (!v.root && !(v.disk as string[] | undefined)?.length) throw usageError('name the target with --disk DEV (repeatable) or --root DIR', INSTALL_USAGE);
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
  });
  if (v.json) process.stdout.write(JSON.stringify(outcome.result, null, 2) + '\n');
  return report(outcome);
}
