/**
 * Entry point of the bundled `ferry-installer` binary (build/ferry-installer.cjs, then a Node
 * single executable).
 */
import { installerMain } from './commands/index.js';

installerMain(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`ferry-installer: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(70);
  },
);
