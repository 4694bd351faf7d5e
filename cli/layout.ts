/** `ferry layout …`: wiring only; the command lives in installer/layout/cli.ts (shared with ferry-installer). */
import { layoutCommand } from '../installer/layout/cli.js';

export function run(argv: string[]): Promise<number> {
  return layoutCommand(argv);
}
