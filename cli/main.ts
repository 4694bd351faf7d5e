/**
 * The `ferry` command: argument parsing and wiring only; the logic lives in
 * installer/ and server/. Each subcommand module exports `run(argv): Promise<number>`.
 */
import { FerryError, ValidationError, toFerryError } from '../common/errors.js';
import { log } from '../common/log.js';
import { VERSION } from '../common/version.js';
import { splitAtDashes } from '../common/cli.js';
import { fileURLToPath } from 'node:url';

type Command = { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> };

// One line per command family; each area adds its own.
export const COMMANDS: Record<string, Command> = {
  install: { summary: 'install a node\'s image onto disks of this host (--disk DEV --yes) or a directory', load: () => import('./install.js') },
  layout: { summary: 'validate, plan, apply and capture disk layouts', load: () => import('./layout.js') },
  serve: { summary: 'run the image server (installer API, blobs, network boot, admin API)', load: () => import('./serve.js') },
  image: { summary: 'images: import, capture (over SSH), ls, show, export, commit, clone, customize, rm, verify, gc', load: () => import('./image.js') },
  node: { summary: 'nodes: add, set, ls (--discovered), enlist, show, rm', load: () => import('./node.js') },
  group: { summary: 'groups of nodes (overlapping, nested): add, rm, ls, show', load: () => import('./group.js') },
  deploy: { summary: 'arm installs of nodes or @groups (a deployment and token per node)', load: () => import('./deploy.js') },
  history: { summary: 'deployment records, of all nodes or one', load: () => import('./history.js') },
  cancel: { summary: 'end armed or running deployments of nodes or @groups; they boot locally again', load: () => import('./cancel.js') },
  redeploy: { summary: 'deploy a record again: same image digest, layout and inputs', load: () => import('./redeploy.js') },
  audit: { summary: 'who changed what (images, nodes, groups, deployments), newest first', load: () => import('./audit.js') },
  monitor: { summary: 'live table of deployments in progress (--json for scripts)', load: () => import('./monitor.js') },
  exec: { summary: 'run a command on many nodes over SSH, identical outputs gathered under node sets (web[01-12])', load: () => import('./exec.js') },
  push: { summary: 'copy a file to many nodes over SFTP (temporary name, then rename), results collated as exec\'s', load: () => import('./push.js') },
  update: { summary: 'what rsync over SSH would change to bring running nodes to an image version (--dry-run)', load: () => import('./update.js') },
  'ssh-pipe': { summary: "run a command on a node over Ferry's verified SSH connection, stdin and stdout piped (rsync's remote shell)", load: () => import('./ssh-pipe.js') },
  'ssh-key': { summary: "print Ferry's public SSH key (made at first use) for authorized_keys", load: () => import('./ssh-key.js') },
  power: { summary: 'power nodes or @groups on, off, cycle, or ask their state (ipmi, redfish, qemu, wol, manual)', load: () => import('./power.js') },
  media: { summary: 'restore media: a hybrid ISO (CD or USB stick, BIOS and UEFI) that installs an image offline: build, write', load: () => import('./media.js') },
  pxe: { summary: 'network boot: dnsmasq proxy-DHCP configuration, iPXE chain script, pxelinux files', load: () => import('./pxe.js') },
};

function help(): string {
  const names = Object.keys(COMMANDS).sort();
  const w = Math.max(...names.map((n) => n.length), 4);
  return [
    `ferry ${VERSION}: deploy complete server images onto machines`,
    '',
    'usage: ferry COMMAND [ARGS...]   (ferry COMMAND --help for its options)',
    '',
    ...names.map((n) => `  ${n.padEnd(w)}  ${COMMANDS[n].summary}`),
    '',
    'Every command takes --data DIR (default $FERRY_DATA, else /var/lib/ferry); listings take --json.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help() + '\n');
    return name ? 0 : 2;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(`ferry ${VERSION}\n`);
    return 0;
  }
  // Only options before `--` are Ferry's: after it come a remote command's own words (ferry exec).
  const own = splitAtDashes(rest).before;
  if (own.includes('--verbose') || own.includes('-v')) log.level = 'info';
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`FERRY_E_USAGE: unknown command "${name}"\n\n${help()}\n`);
    return 2;
  }
  const json = own.includes('--json');
  try {
    const mod = await cmd.load();
    return await mod.run(rest);
  } catch (e) {
    const err = toFerryError(e);
    if (json) {
      process.stdout.write(JSON.stringify({ error: err.toJSON() }, null, 2) + '\n');
    } else if (err instanceof ValidationError) {
      process.stderr.write(err.format() + '\n');
    } else {
      process.stderr.write(err.format() + '\n');
      if (err.code === 'FERRY_E_INTERNAL' && e instanceof Error && e.stack) process.stderr.write(e.stack + '\n');
    }
    return err.code === 'FERRY_E_USAGE' ? 2 : 1;
  }
}

/**
 * A reader that stopped reading (`ferry audit | head`) ends the command quietly with status 0,
 * instead of an unhandled EPIPE and its stack: the output nobody reads is not an error.
 */
export function quietOnClosedPipe(stream: NodeJS.WriteStream, exit: (code: number) => void = (c) => process.exit(c)): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') return exit(0);
    throw e;
  });
}

// Run when executed (the bundle's entry), not when imported by tests.
if (process.argv[1] && /ferry(\.mjs)?$|cli\/main\.[tj]s$/.test(process.argv[1])) {
  quietOnClosedPipe(process.stdout);
  quietOnClosedPipe(process.stderr);
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(String(e instanceof FerryError ? e.format() : e) + '\n');
      process.exitCode = 70;
    },
  );
}
