/**
 * Entry point of the bundled `ferry-installer` binary (build/ferry-installer.cjs, then a Node
 * single executable). The same file is the extraction thread's code (installer/layers/worker.ts).
 */
import { runExtractWorkerIfAny, setWorkerEntry } from './layers/index.js';
import { installerMain } from './commands/index.js';

/** How to start this program again as a thread: the bundle file, or inside a single executable its embedded copy. */
function selfEntry(): { file: string } | { code: string } | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const sea = require('node:sea') as { isSea(): boolean; getAsset(k: string, enc: string): string };
    if (sea.isSea()) return { code: sea.getAsset('ferry-installer.cjs', 'utf8') };
  } catch {
    /* not a single executable, or a Node without node:sea */
  }
  return typeof __filename === 'string' && __filename.endsWith('.cjs') ? { file: __filename } : undefined;
}

if (!runExtractWorkerIfAny()) {
  setWorkerEntry(selfEntry());
  installerMain(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`ferry-installer: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(70);
    },
  );
}
