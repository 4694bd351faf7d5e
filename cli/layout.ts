/** `ferry layout …`: wiring only; the command lives in installer/commands/layout.ts (shared with ferry-installer). */
import { layoutCommand } from '../installer/commands/layout.js';

export function run(argv: string[]): Promise<number> {
  return layoutCommand(argv);
}
