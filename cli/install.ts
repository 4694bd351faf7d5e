/** `ferry install`: the installer's own code, run on this host (USB stick, disk image, loop device). */
import { installCommand } from '../installer/commands/install.js';

export function run(argv: string[]): Promise<number> {
  return installCommand(argv);
}
