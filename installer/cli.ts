import { VERSION } from '../common/version.js';

/** Argument handling of the `ferry-installer` binary. */
export async function installerMain(argv: string[]): Promise<number> {
  if (argv[0] === '--version' || argv[0] === 'version') {
    process.stdout.write(`ferry-installer ${VERSION}\n`);
    return 0;
  }
  process.stderr.write('usage: ferry-installer --version | run [--server URL --token TOKEN] (from the kernel command line in the boot environment)\n');
  return 2;
}
