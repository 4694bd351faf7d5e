/** The `ferry-installer` binary's commands: run (boot environment), install (ordinary host), layout, inventory. */
import { toFerryError } from '../../common/errors.js';
import { VERSION } from '../../common/version.js';
import { installCommand } from './install.js';
import { RUN_USAGE, runCommand } from './run.js';

async function layoutCommand(argv: string[]): Promise<number> {
  const m = await import('./layout.js');
  return m.layoutCommand(argv);
}

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
    if (cmd === 'inventory') return await (await import('./inventory.js')).inventoryCommand(rest);
  } catch (e) {
    const err = toFerryError(e);
    process.stderr.write(err.format() + '\n');
    return err.code === 'FERRY_E_USAGE' ? 2 : 1;
  }
  process.stderr.write(`usage: ferry-installer --version | ${RUN_USAGE.replace('ferry-installer ', '')} | install … (as ferry install) | layout … | inventory [--server URL --token TOKEN] [--json]\n`);
  return 2;
}
