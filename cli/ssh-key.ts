/** `ferry ssh-key`: Ferry's public SSH key (made at first use), for authorized_keys. */
import { ferryKey } from '../server/ssh/keys.js';
import { dataDir, parse, printJson } from '../common/cli.js';
import { DataDir } from '../server/context.js';

const USAGE = `ferry ssh-key [--json]   prints Ferry's public SSH key (DATA/ssh/id_ed25519.pub), made at first use;
  add it to /root/.ssh/authorized_keys of machines Ferry did not install`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, {}, USAGE, { positionals: false });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  // Opened for its mode (0700) and so the key lands in a data directory that exists.
  const d = new DataDir(dataDir(values));
  try {
    const k = ferryKey(d.dir);
    if (values.json) printJson({ publicKey: k.publicKey, file: `${k.file}.pub` });
    else process.stdout.write(k.publicKey + '\n');
    return 0;
  } finally {
    d.close();
  }
}
